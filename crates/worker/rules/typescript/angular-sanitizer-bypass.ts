import { Component, Input, SecurityContext } from "@angular/core";
import { DomSanitizer, SafeHtml, SafeResourceUrl } from "@angular/platform-browser";
import DOMPurify from "dompurify";

@Component({ selector: "app-comment", template: `<div [innerHTML]="body"></div>` })
export class CommentComponent {
  @Input() html = "";
  @Input() videoId = "";
  body: SafeHtml = "";
  frame: SafeResourceUrl = "";

  constructor(private sanitizer: DomSanitizer) {}

  render(): void {
    // ruleid: picket.typescript.angular-sanitizer-bypass
    this.body = this.sanitizer.bypassSecurityTrustHtml(this.html);
    // ruleid: picket.typescript.angular-sanitizer-bypass
    this.frame = this.sanitizer.bypassSecurityTrustResourceUrl(`https://player.example.com/${this.videoId}`);
    // ruleid: picket.typescript.angular-sanitizer-bypass
    const raw = this.sanitizer.sanitize(SecurityContext.NONE, this.html);
    // ok: picket.typescript.angular-sanitizer-bypass
    this.body = this.sanitizer.bypassSecurityTrustHtml("<b>static</b>");
    // ok: picket.typescript.angular-sanitizer-bypass
    this.body = this.sanitizer.bypassSecurityTrustHtml(DOMPurify.sanitize(this.html));
    // ok: picket.typescript.angular-sanitizer-bypass
    const clean = this.sanitizer.sanitize(SecurityContext.HTML, this.html);
    console.log(raw, clean);
  }
}
