// The fault matrix (faultMatrix.ts), rows 7-12: the store written behind the
// rotation's back, the source gone at the revocation, a read-only store at the
// promotion, the engine killed, two operators at once, a consumer's disk full.
import { faultMatrix } from "./faultMatrix";

faultMatrix(7, 12);
