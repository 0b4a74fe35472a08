// Validates Gateway API objects (JSON documents on stdin) against the schema of Gateway API's own
// types, as compiled by @kubernetes-models/gateway-api (npm): kubernetes-validate ships no CRDs.
// argv[2]: the node_modules folder the package is installed in (tests/setup.sh: .tools/gateway-api).
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const kinds = {};
for (const kind of ["HTTPRoute", "Gateway"]) {
  const file = path.join(modules, "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1", `${kind}.js`);
  kinds[kind] = (await import(pathToFileURL(file).href))[kind];
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const failures = [];
for (const doc of JSON.parse(input)) {
  const model = kinds[doc.kind];
  const where = `${doc.kind} ${doc.metadata?.namespace ?? ""}/${doc.metadata?.name ?? "?"}`;
  if (doc.apiVersion !== "gateway.networking.k8s.io/v1" || model === undefined) {
    failures.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  try {
    new model(doc).validate();
  } catch (error) {
    failures.push(`${where}: ${error.message}`);
  }
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
