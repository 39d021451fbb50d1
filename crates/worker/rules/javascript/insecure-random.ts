export class Invites {
  issue(): string {
    // ruleid: picket.javascript.insecure-random
    const inviteCode: string = Math.random().toString(36).substring(2, 10);
    return inviteCode;
  }
}
