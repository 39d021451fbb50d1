import { HttpService } from "@nestjs/axios";
import { Body, Controller, Get, Post, Query } from "@nestjs/common";
import { firstValueFrom } from "rxjs";

class WebhookDto {
  url!: string;
}

@Controller("integrations")
export class IntegrationsController {
  constructor(private readonly http: HttpService) {}

  @Get("preview")
  async preview(@Query("url") url: string): Promise<string> {
    // ruleid: picket.typescript.nestjs-ssrf
    const res = await fetch(url);
    return res.text();
  }

  @Post("webhook")
  async test(@Body() dto: WebhookDto): Promise<number> {
    // ruleid: picket.typescript.nestjs-ssrf
    const res = await firstValueFrom(this.http.post(dto.url, { ping: true }));
    return res.status;
  }

  @Get("user")
  async user(@Query("id") id: string): Promise<unknown> {
    // ok: picket.typescript.nestjs-ssrf
    const res = await firstValueFrom(this.http.get(`https://api.example.com/users/${id}`));
    return res.data;
  }
}
