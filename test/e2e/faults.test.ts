// The fault matrix (faultMatrix.ts), rows 1-6: a consumer's health check or
// reload fails, its host is unreachable, refuses the key or offers another
// host key, the source is unreachable.
import { faultMatrix } from "./faultMatrix";

faultMatrix(1, 6);
