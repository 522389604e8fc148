package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
)

const configUsage = `usage: huskctl config <dump|check> [--config PATH]

  dump    print the files applied and the effective configuration as TOML
  check   load the configuration strictly, then what the shim would find
          only when a container comes: load every hook module as the shim
          does (file, sha256 pin, compiles) with its [hook.config] (which
          the module checks), and check that the default handler can run
          on this host; print the files applied and the verdicts, or every
          error

The config file is --config, else $` + config.EnvPath + `, else ` + config.DefaultPath + `,
followed by the drop-ins ` + config.DropInDir + `/*.toml next to it.
`

// runConfig implements "huskctl config dump|check [--config PATH]".
func runConfig(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, configUsage)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	var show func(ctx context.Context, w io.Writer, c *config.Config) error
	switch sub {
	case "dump":
		show = func(_ context.Context, w io.Writer, c *config.Config) error { return dumpConfig(w, c) }
	case "check":
		show = checkConfig
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, configUsage)
		return nil
	default:
		fmt.Fprint(os.Stderr, configUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}

	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configUsage) }
	configPath := fs.String("config", "", "config file (default $"+config.EnvPath+", then "+config.DefaultPath+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	path, explicit := config.Path(*configPath)
	logging.L(ctx).Debug("loading config", "path", path, "explicit", explicit)
	c, err := config.Load(path, explicit)
	if err != nil {
		return err
	}
	return show(ctx, os.Stdout, c)
}

// dumpConfig prints the files applied as TOML comments, then c, so that the
// output is itself a config file.
func dumpConfig(w io.Writer, c *config.Config) error {
	b, err := c.TOML()
	if err != nil {
		return err
	}
	var head strings.Builder
	head.WriteString("# files applied:\n")
	if len(c.Sources) == 0 {
		head.WriteString("#   none (built-in defaults)\n")
	}
	for _, s := range c.Sources {
		fmt.Fprintf(&head, "#   %s\n", s)
	}
	head.WriteString("\n")
	if _, err := io.WriteString(w, head.String()); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
