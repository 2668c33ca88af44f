// Where the driver finds the checkout, its scratch space and the lab's state.
import * as path from "node:path";

/** The checkout this driver belongs to. */
export const ROOT = path.resolve(__dirname, "../..");
/** Scratch space of the tests and benchmarks: throwaway project copies, SSH key files. */
export const WORK = path.join(ROOT, ".test-work");
/** The lab's state (lab/up.sh's default `$LAB_DIR`). */
export const LAB_DIR = path.join(ROOT, ".lab");
