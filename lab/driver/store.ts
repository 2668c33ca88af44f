// The lab's file store (`$LAB_DIR/store`) as tests read it: each secret's
// parts named by the store's own layout (stores/fileLayout.ts), never by a
// suffix written here.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileStorePath, type FileStorePart } from "../../stores/fileLayout";
import { LAB_DIR } from "./paths";

/** The path of one part of secret `name` in the lab's file store. */
export const storePath = (name: string, part: FileStorePart = "current") => fileStorePath(path.join(LAB_DIR, "store"), name, part);
/** What one part of secret `name` holds (throws when it is absent). */
export const storeValue = (name: string, part: FileStorePart = "current") => fs.readFileSync(storePath(name, part), "utf8");
export const storeHas = (name: string, part: FileStorePart = "current") => fs.existsSync(storePath(name, part));
/** The generation the lab's file store has committed for a secret (0 before its first rotation). */
export const committedGeneration = (name: string) => (storeHas(name, "committed") ? Number(storeValue(name, "committed").trim()) : 0);
