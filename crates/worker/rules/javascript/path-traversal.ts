import { Request, Response } from "express";
import * as fs from "fs";

export function avatar(req: Request, res: Response): void {
  const name: string = req.query.name as string;
  // ruleid: picket.javascript.path-traversal
  const data = fs.readFileSync(`/srv/avatars/${name}`);
  res.send(data);
}
