import { Controller, Get, Query, Redirect, Res } from "@nestjs/common";
import { Response } from "express";

@Controller("auth")
export class AuthController {
  @Get("callback")
  callback(@Query("next") next: string, @Res() res: Response): void {
    // ruleid: picket.typescript.nestjs-open-redirect
    res.redirect(next);
  }

  @Get("go")
  @Redirect("/", 302)
  go(@Query("to") to: string) {
    // ruleid: picket.typescript.nestjs-open-redirect
    return { url: to };
  }

  @Get("profile")
  profile(@Query("id") id: string, @Res() res: Response): void {
    // ok: picket.typescript.nestjs-open-redirect
    res.redirect(`/users/${id}`);
  }
}
