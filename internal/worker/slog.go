package worker

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// slogHandler writes log/slog records to a zerolog logger, so that the HTTP
// API (which logs with log/slog: it is on the producer side, without
// zerolog) logs in the worker's format under worker -dev.
type slogHandler struct {
	l      zerolog.Logger
	prefix string // the open groups, "a.b."
}

// newSlogLogger returns a *slog.Logger writing to l.
func newSlogLogger(l zerolog.Logger) *slog.Logger { return slog.New(slogHandler{l: l}) }

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.InfoLevel
	}
	return zerolog.DebugLevel
}

// Enabled implements slog.Handler.
func (h slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return zerologLevel(l) >= h.l.GetLevel()
}

// Handle implements slog.Handler.
func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.l.WithLevel(zerologLevel(r.Level))
	r.Attrs(func(a slog.Attr) bool {
		addAttr(ev, h.prefix, a)
		return true
	})
	ev.Msg(r.Message)
	return nil
}

// WithAttrs implements slog.Handler.
func (h slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := h.l.With()
	for _, a := range attrs {
		c = addContext(c, h.prefix, a)
	}
	return slogHandler{l: c.Logger(), prefix: h.prefix}
}

// WithGroup implements slog.Handler.
func (h slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return slogHandler{l: h.l, prefix: h.prefix + name + "."}
}

func addAttr(ev *zerolog.Event, prefix string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return // slog's rule: an empty attribute is ignored
	}
	v := a.Value.Resolve()
	key := prefix + a.Key
	switch v.Kind() {
	case slog.KindGroup:
		for _, g := range v.Group() {
			addAttr(ev, key+".", g)
		}
	case slog.KindString:
		ev.Str(key, v.String())
	case slog.KindInt64:
		ev.Int64(key, v.Int64())
	case slog.KindUint64:
		ev.Uint64(key, v.Uint64())
	case slog.KindFloat64:
		ev.Float64(key, v.Float64())
	case slog.KindBool:
		ev.Bool(key, v.Bool())
	case slog.KindDuration:
		ev.Dur(key, v.Duration())
	case slog.KindTime:
		ev.Time(key, v.Time())
	default:
		ev.Interface(key, v.Any())
	}
}

func addContext(c zerolog.Context, prefix string, a slog.Attr) zerolog.Context {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			c = addContext(c, prefix+a.Key+".", g)
		}
		return c
	}
	return c.Interface(prefix+a.Key, v.Any())
}
