import * as serialize from "node-serialize";

export function restore(cookie: string): unknown {
  // ruleid: picket.javascript.unsafe-deserialization
  return serialize.unserialize(Buffer.from(cookie, "base64").toString());
}
