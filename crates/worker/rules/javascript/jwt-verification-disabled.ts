import * as jwt from "jsonwebtoken";

export function check(token: string, key: string) {
  // ruleid: picket.javascript.jwt-verification-disabled
  return jwt.verify(token, key, { algorithms: ["none"] });
}
