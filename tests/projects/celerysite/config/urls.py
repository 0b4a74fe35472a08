from django.urls import path

from orders import views

urlpatterns = [
    path("orders/new/", views.new_order),
    path("orders/<int:pk>/", views.order),
]
