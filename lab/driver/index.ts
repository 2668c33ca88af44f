// The lab driver: what the end-to-end tests and bin/bench use to drive the
// lab and the real engine. Pure: paths, events, flatConfig. The rest talks to
// the world: lab (its description, control scripts and services), store (its
// file store), stacks (configs that read lab.json), hostFaults (a host's
// mount namespace), fleet (Redis users and consumer files), kube (the
// Kubernetes API server's Secret), workspace (project copies running the
// real pulumi and bin/rotate).
export * from "./events";
export * from "./flatConfig";
export * from "./fleet";
export * from "./hostFaults";
export * from "./kube";
export * from "./lab";
export * from "./paths";
export * from "./stacks";
export * from "./store";
export * from "./workspace";
