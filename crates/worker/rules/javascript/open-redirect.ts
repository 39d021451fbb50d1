import { Request, Response } from "express";

export function back(req: Request, res: Response): void {
  // ruleid: picket.javascript.open-redirect
  res.redirect(String(req.query.returnTo));
}
