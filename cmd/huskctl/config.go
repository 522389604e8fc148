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
  check   load the configuration strictly; print the files applied or the errors

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
	var show func(w io.Writer, c *config.Config) error
	switch sub {
	case "dump":
		show = dumpConfig
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
	return show(os.Stdout, c)
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

// checkConfig prints the files applied; Load has already checked them.
func checkConfig(w io.Writer, c *config.Config) error {
	files := "none (built-in defaults)"
	if len(c.Sources) > 0 {
		files = strings.Join(c.Sources, ", ")
	}
	_, err := fmt.Fprintf(w, "ok: %s\n", files)
	return err
}
