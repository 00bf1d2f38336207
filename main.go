// Command mmsrelay is an Email ⇄ MMS relay. Its subcommands run the relay
// and the offline tools built on the same code:
//
//	mmsrelay serve [-config FILE]                     run the relay
//	mmsrelay convert [-to pdu|mm4|email] [FILE|-]     convert an email into an MMS, or back
//	mmsrelay dkim-keygen [-type rsa|ed25519]          make a DKIM key and print its DNS record
//	mmsrelay decode [-parts DIR] [-strict] [FILE|-]   print a binary MMS PDU as JSON
//	mmsrelay check-config [-config FILE]              check a configuration file
//	mmsrelay queue list|show|retry|drop [ID]          show and manage the queue
//	mmsrelay hash-password                            hash a submission password
//	mmsrelay version                                  print the version
//
// Run "mmsrelay -h" for the list and "mmsrelay CMD -h" for each command's
// help. Exit status: 0 success, 1 failure (one line on stderr), 2 usage
// error.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand. run gets the arguments after the command name.
type command struct {
	name    string
	args    string // synopsis of the arguments, for the command list
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands returns the subcommands in the order "mmsrelay -h" lists them.
func commands() []command {
	return []command{
		{"serve", "[-config FILE]", "run the relay: SMTP in, MMS out", runServe},
		{"convert", "[-to pdu|mm4|email] [-rcpt N]... [FILE|-]", "convert an email into an MMS offline, or an MMS into an email", runConvert},
		{"dkim-keygen", "[-type rsa|ed25519] [-out FILE]", "make a DKIM key and print its DNS record", runDKIMKeygen},
		{"decode", "[-parts DIR] [-strict] [FILE|-]", "print a binary MMS PDU as JSON", runDecode},
		{"check-config", "[-config FILE]", "check a configuration file", runCheckConfig},
		{"queue", "list|show|retry|drop [ID]", "show and manage the queue", runQueue},
		{"optout", "list [-number N]", "numbers that opted out (STOP)", runOptout},
		{"hash-password", "", "hash a submission password for the config", runHashPassword},
		{"version", "", "print the version", runVersion},
	}
}

// run is the whole program: it dispatches args (without the program name) to
// a subcommand and returns the exit status. Tests call it directly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			// "mmsrelay help decode" is "mmsrelay decode -h".
			return run([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "mmsrelay: unknown command %q (run 'mmsrelay -h' for the list)\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "mmsrelay is an Email ⇄ MMS relay.\n\nUsage:\n  mmsrelay COMMAND [flags] [args]\n\nCommands:\n")
	nw, aw := 0, 0
	for _, c := range commands() {
		nw, aw = max(nw, len(c.name)), max(aw, len(c.args))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s %-*s  %s\n", nw, c.name, aw, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'mmsrelay COMMAND -h' for a command's help.\n"+
		"Exit status: 0 success, 1 failure, 2 usage error.\n")
}

// newFlagSet returns a FlagSet for a subcommand whose -h prints help, the
// synopsis and description, followed by the flags.
func newFlagSet(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("mmsrelay "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mmsrelay %s %s\n\n%s", name, synopsis, help)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs. It returns ok=false and the exit status
// when the command must stop: 0 after -h (help on stdout), 2 after a usage
// error (the error and the help on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, ok bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, false
	default:
		stderr.Write(buf.Bytes())
		return exitUsage, false
	}
}

// usageError reports a usage error of the command named in fs and returns 2.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "%s: %s (run '%s -h' for help)\n", fs.Name(), fmt.Sprintf(format, a...), fs.Name())
	return exitUsage
}

// fail prints err as one line on stderr, prefixed with the command, and
// returns 1.
func fail(stderr io.Writer, cmd string, err error) int {
	msg := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, err.Error())
	fmt.Fprintf(stderr, "mmsrelay %s: %s\n", cmd, msg)
	return exitFailure
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Version prints the module version of this build ('devel' for a\nbuild from a work tree without version information).\n")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintf(stdout, "mmsrelay %s\n", version())
	return exitOK
}

// version returns the main module's version from the build information, or
// "devel".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "devel"
	}
	return bi.Main.Version
}
