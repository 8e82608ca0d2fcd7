// Validates prometheus-operator objects (ServiceMonitor, PrometheusRule) against the CRD schemas
// shipped by @kubernetes-models/prometheus-operator. Input on stdin: a JSON array of objects.
// Output: a JSON array of {kind, name, error} (error null when valid). Used by test_chart.py.
import { pathToFileURL } from "node:url";
import path from "node:path";

// argv[2]: the folder whose node_modules holds the package (.cache/deploy-tools).
const entry = path.join(process.argv[2], "node_modules", "@kubernetes-models", "prometheus-operator",
                        "monitoring.coreos.com", "v1", "index.js");
const models = await import(pathToFileURL(entry).href);

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const obj of JSON.parse(input)) {
  const name = obj.metadata?.name;
  const Model = obj.apiVersion === "monitoring.coreos.com/v1" ? models[obj.kind] : undefined;
  if (!Model) {
    results.push({ kind: obj.kind, name, error: `no schema for ${obj.apiVersion} ${obj.kind}` });
    continue;
  }
  try {
    new Model(obj).validate();
    results.push({ kind: obj.kind, name, error: null });
  } catch (e) {
    results.push({ kind: obj.kind, name, error: String(e.message ?? e) });
  }
}
process.stdout.write(JSON.stringify(results));
