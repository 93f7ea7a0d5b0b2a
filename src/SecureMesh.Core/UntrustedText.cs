using System.Buffers;
using System.Globalization;
using System.Text;

namespace SecureMesh.Core;

/// <summary>
/// Makes text a peer chose (an error message, say) safe to store, log and show: every character that could act on a
/// terminal or a log reader (C0 and C1 controls, DEL, line and paragraph separators, bidi overrides and isolates,
/// zero-width and other format characters, also beyond the BMP, and lone surrogates) becomes <c>?</c>, and the text is
/// cut to a length. The Cli's TerminalText uses the same rule; applied once where peer text enters, so nothing stored or
/// logged downstream carries it raw.
/// </summary>
public static class UntrustedText
{
    /// <summary>What an unsafe character becomes.</summary>
    public const char Replacement = '?';

    /// <summary>Longest peer text kept by default, in characters (the wire allows 512 bytes).</summary>
    public const int DefaultMaxLength = 200;

    /// <summary>The cleaned, length-capped text; a cut is marked with an ellipsis.</summary>
    public static string Clean(string? text, int maxLength = DefaultMaxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }
        var builder = new StringBuilder(Math.Min(text.Length, maxLength + 1));
        var i = 0;
        while (i < text.Length && builder.Length < maxLength)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out var used) != OperationStatus.Done)
            {
                // A lone surrogate: never passed on.
                builder.Append(Replacement);
                i += Math.Max(1, used);
                continue;
            }
            if (IsUnsafe(rune))
            {
                builder.Append(Replacement);
            }
            else if (builder.Length + rune.Utf16SequenceLength <= maxLength)
            {
                builder.Append(text, i, used);
            }
            else
            {
                break;
            }
            i += used;
        }
        if (i < text.Length)
        {
            builder.Append('…');
        }
        return builder.ToString();
    }

    /// <summary>True for a character that must not reach a log or terminal as it is.</summary>
    public static bool IsUnsafe(Rune rune)
    {
        var v = rune.Value;
        if (v < 0x20 || (v >= 0x7F && v <= 0x9F) || v is 0x2028 or 0x2029)
        {
            return true;
        }
        return v >= 0xA0 && Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format;
    }
}
