"""The project's own channel layer class, configured with a broker URL (CONFIG {"url": ...}).

It stands for a company's in-house layer (a wrapper around its message broker's client); here it
keeps messages in memory, which is all the tests need: deploykit never imports it to plan.
"""

from channels.layers import InMemoryChannelLayer


class BrokerLayer(InMemoryChannelLayer):
    def __init__(self, url=None, **kwargs):
        self.url = url
        super().__init__(**kwargs)
