package main

import "flag"

// parseInterspersed parses args with fs, flags before, between or after
// the positional arguments (`policy build ./dir -o out.wasm` as well as
// `policy build -o out.wasm ./dir`), as most command-line tools accept;
// Go's flag package alone stops at the first positional argument. "--"
// ends the flags: what follows is positional. It returns the positional
// arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" when it stopped on one.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
