import { execSync } from "child_process";

export function branch(name: string): string {
  // ruleid: picket.javascript.command-injection
  return execSync(`git checkout ${name}`).toString();
}

export function head(): string {
  // ok: picket.javascript.command-injection
  return execSync("git rev-parse HEAD").toString();
}
