package jobs

import (
	"context"
	"fmt"
	"os/exec"
)

func archive(ctx context.Context, dir, name string) error {
	// ruleid: picket.go.command-injection
	if err := exec.Command("sh", "-c", "tar czf /tmp/"+name+".tgz "+dir).Run(); err != nil {
		return err
	}
	// ruleid: picket.go.command-injection
	cmd := exec.CommandContext(ctx, "/bin/bash", "-c", fmt.Sprintf("du -sh %s", dir))
	// ok: picket.go.command-injection
	safe := exec.CommandContext(ctx, "tar", "czf", "/tmp/"+name+".tgz", "--", dir)
	// ok: picket.go.command-injection
	fixed := exec.Command("sh", "-c", "make clean && make")
	_ = safe
	_ = fixed
	return cmd.Run()
}
