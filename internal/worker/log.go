package worker

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/meetops/meetops/internal/termtext"
)

// NewLogger returns the process logger: JSON lines, or a console writer
// when format is "console" or (format empty) w is a terminal.
func NewLogger(w io.Writer, level, format string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if format == "console" || (format == "" && isTerminal(w)) {
		w = consoleWriter(w)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// consoleWriter is zerolog's console writer with every message and value
// escaped for the terminal: a log line can quote an upstream error message
// or a task ID, which could carry escape sequences. (JSON lines escape
// control characters already.)
func consoleWriter(w io.Writer) zerolog.ConsoleWriter {
	escape := func(i any) string {
		if i == nil {
			return ""
		}
		return termtext.Escape(fmt.Sprintf("%s", i))
	}
	return zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly,
		FormatMessage: escape, FormatFieldValue: escape, FormatErrFieldValue: escape}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// asynqLogger adapts zerolog to asynq.Logger.
type asynqLogger struct{ l zerolog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn().Msg(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error().Msg(fmt.Sprint(args...)) }

// Fatal logs at error level. asynq calls it for unrecoverable start-up
// errors; exiting is left to Run, which returns them.
func (a asynqLogger) Fatal(args ...any) { a.l.Error().Msg(fmt.Sprint(args...)) }

var _ asynq.Logger = asynqLogger{}

// asynqLevel maps a zerolog level to asynq's.
func asynqLevel(l zerolog.Level) asynq.LogLevel {
	switch {
	case l <= zerolog.DebugLevel:
		return asynq.DebugLevel
	case l == zerolog.InfoLevel:
		return asynq.InfoLevel
	case l == zerolog.WarnLevel:
		return asynq.WarnLevel
	}
	return asynq.ErrorLevel
}
