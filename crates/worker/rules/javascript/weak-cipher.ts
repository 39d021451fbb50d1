import { createCipheriv } from "crypto";

export function legacy(key: Buffer, iv: Buffer) {
  // ruleid: picket.javascript.weak-cipher
  return createCipheriv("des-ede3-cbc", key, iv);
}
