import { Agent } from "https";

// ruleid: picket.javascript.tls-verification-disabled
export const insecure: Agent = new Agent({ rejectUnauthorized: false });
// ok: picket.javascript.tls-verification-disabled
export const secure: Agent = new Agent({ keepAlive: true });
