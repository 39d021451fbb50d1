import { createHash } from "crypto";

export function etag(body: Buffer): string {
  // ruleid: picket.javascript.weak-hash
  return createHash("md5").update(body).digest("base64");
}
