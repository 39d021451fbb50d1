import { createCipheriv } from "crypto";

export function seal(key: Buffer) {
  // ruleid: picket.javascript.ecb-mode
  return createCipheriv("aes-256-ecb", key, null);
}
