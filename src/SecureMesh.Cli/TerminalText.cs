using System.Globalization;
using System.Text;
using SecureMesh.Core;

namespace SecureMesh.Cli;

/// <summary>
/// Makes text from peers, files and the database harmless before it reaches a terminal. A peer chooses file names,
/// search results, error texts and (through them) log lines; a raw ESC would let it start CSI or OSC sequences (move the
/// cursor, rewrite earlier lines, set the window title, write the clipboard), 0x9B is a one-byte CSI on some terminals,
/// and bidi overrides or zero-width characters make one name look like another (<c>exe.txt</c> shown as <c>txt.exe</c>).
/// </summary>
internal static class TerminalText
{
    /// <summary>What an unsafe character is shown as.</summary>
    public const char Replacement = '?';

    /// <summary>
    /// True for a character that must never reach a terminal as it is: C0 controls (ESC, BEL, BS, CR, LF, TAB…), DEL,
    /// C1 controls (0x80–0x9F), format characters (bidi embeddings, overrides and isolates, zero-width space and joiners,
    /// the byte order mark, the soft hyphen…) and the Unicode line and paragraph separators.
    /// </summary>
    public static bool IsUnsafe(char c) => !char.IsSurrogate(c) && UntrustedText.IsUnsafe(new Rune(c));

    /// <summary>
    /// True for a character that must never reach a terminal as it is, beyond the BMP too: a non-BMP format character
    /// (the invisible tag characters U+E0000–U+E007F, say) is as unsafe as a BMP one. The rule is Core's
    /// <see cref="UntrustedText.IsUnsafe"/>, the one applied where peer text enters.
    /// </summary>
    public static bool IsUnsafe(Rune rune) => UntrustedText.IsUnsafe(rune);

    /// <summary>
    /// Shows raw text exactly but inertly (a peer's announced name, say): every unsafe character becomes
    /// <c>\u{XXXX}</c>, so the user sees what was sent without the terminal acting on it.
    /// </summary>
    public static string Escape(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (IsUnsafe(rune))
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{{{rune.Value:X4}}}");
            }
            else
            {
                builder.Append(rune.ToString());
            }
        }
        return builder.ToString();
    }

    /// <summary>One line of display text: every unsafe character, line breaks and tabs included, becomes <see cref="Replacement"/>.</summary>
    public static string Safe(string? text) => Replace(text ?? string.Empty, keep: static _ => false);

    /// <summary>Like <see cref="Safe"/>, but keeps line feeds: for our own multi-line messages that quote untrusted text.</summary>
    public static string SafeLines(string? text) => Replace(text ?? string.Empty, keep: static c => c == '\n');

    /// <summary>
    /// Escapes the unsafe characters that the relaxed JSON encoder leaves raw (format characters such as the bidi
    /// controls) as <c>\uXXXX</c>: still the same JSON value, but inert on a terminal. JSON text holds non-ASCII
    /// characters only inside strings, so the escape is always in a string.
    /// </summary>
    public static string EscapeJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        Func<char, bool> keep = static c => c is '\n' or '\r' or '\t';
        if (!HasUnsafe(json, keep))
        {
            return json;
        }
        var builder = new StringBuilder(json.Length + 16);
        for (var i = 0; i < json.Length;)
        {
            var length = UnitLength(json, i);
            if (IsUnsafeUnit(json.AsSpan(i, length), keep))
            {
                // A character beyond the BMP is escaped as its two UTF-16 halves, as JSON writes it.
                foreach (var c in json.AsSpan(i, length))
                {
                    builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
                }
            }
            else
            {
                builder.Append(json.AsSpan(i, length));
            }
            i += length;
        }
        return builder.ToString();
    }

    /// <summary>
    /// Wraps a console writer so no unsafe character reaches the terminal, whatever a command prints; line feeds, carriage
    /// returns (progress lines) and tabs pass. The inner writer is not disposed with the wrapper.
    /// </summary>
    public static TextWriter Guard(TextWriter inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        return inner as GuardedWriter ?? new GuardedWriter(inner);
    }

    // Text is checked a character at a time, and a character beyond the BMP is two UTF-16 units: a surrogate pair is
    // one unit of two, judged as the character it encodes (the invisible tag characters are format characters too);
    // a lone surrogate is no character at all and never passes.

    /// <summary>Length of the unit at <paramref name="i"/>: 2 for a surrogate pair, else 1.</summary>
    private static int UnitLength(ReadOnlySpan<char> text, int i) =>
        char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;

    private static bool IsUnsafeUnit(ReadOnlySpan<char> unit, Func<char, bool> keep) => unit.Length == 2
        ? IsUnsafe(new Rune(unit[0], unit[1]))
        : char.IsSurrogate(unit[0]) || (IsUnsafe(unit[0]) && !keep(unit[0]));

    private static bool HasUnsafe(ReadOnlySpan<char> text, Func<char, bool> keep)
    {
        for (var i = 0; i < text.Length;)
        {
            var length = UnitLength(text, i);
            if (IsUnsafeUnit(text.Slice(i, length), keep))
            {
                return true;
            }
            i += length;
        }
        return false;
    }

    private static string Replace(string text, Func<char, bool> keep)
    {
        if (!HasUnsafe(text, keep))
        {
            return text;
        }
        return string.Create(text.Length, (text, keep), static (span, state) =>
        {
            for (var i = 0; i < span.Length;)
            {
                var length = UnitLength(state.text, i);
                var unit = state.text.AsSpan(i, length);
                if (IsUnsafeUnit(unit, state.keep))
                {
                    span.Slice(i, length).Fill(Replacement);
                }
                else
                {
                    unit.CopyTo(span[i..]);
                }
                i += length;
            }
        });
    }

    private sealed class GuardedWriter(TextWriter inner) : TextWriter(inner.FormatProvider)
    {
        // A high surrogate written on its own, waiting for its low half to know which character it is.
        private char _high;

        private static bool Passes(char c) => c is '\n' or '\r' or '\t';

        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            if (_high != '\0')
            {
                var high = _high;
                _high = '\0';
                if (char.IsLowSurrogate(value))
                {
                    WriteUnit([high, value]);
                    return;
                }
                inner.Write(Replacement);
            }
            if (char.IsHighSurrogate(value))
            {
                _high = value;
                return;
            }
            WriteUnit([value]);
        }

        public override void Write(string? value)
        {
            if (value is not null)
            {
                Write(value.AsSpan());
            }
        }

        public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

        public override void Write(ReadOnlySpan<char> buffer)
        {
            if (_high != '\0' && !buffer.IsEmpty)
            {
                Write(buffer[0]);
                buffer = buffer[1..];
            }
            if (!buffer.IsEmpty && char.IsHighSurrogate(buffer[^1]))
            {
                // Its low half may come with the next write.
                Write(buffer[..^1]);
                Write(buffer[^1]);
                return;
            }
            if (!HasUnsafe(buffer, Passes))
            {
                inner.Write(buffer);
                return;
            }
            inner.Write(Replace(buffer.ToString(), Passes));
        }

        private void WriteUnit(ReadOnlySpan<char> unit)
        {
            if (IsUnsafeUnit(unit, Passes))
            {
                for (var i = 0; i < unit.Length; i++)
                {
                    inner.Write(Replacement);
                }
                return;
            }
            inner.Write(unit);
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            WriteLine();
        }

        public override void WriteLine(ReadOnlySpan<char> buffer)
        {
            Write(buffer);
            WriteLine();
        }

        public override void WriteLine()
        {
            if (_high != '\0')
            {
                // A high surrogate whose low half never came is no character.
                _high = '\0';
                inner.Write(Replacement);
            }
            inner.WriteLine();
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync() => inner.FlushAsync();

        public override Task WriteAsync(string? value)
        {
            Write(value);
            return Task.CompletedTask;
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }
    }
}
