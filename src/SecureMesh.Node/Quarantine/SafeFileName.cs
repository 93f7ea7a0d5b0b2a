using System.Globalization;
using System.Text;

namespace SecureMesh.Node.Quarantine;

/// <summary>
/// Turns a file name announced by a peer into one that is safe to create in any folder on Linux, macOS or Windows.
/// Only the last path component survives; nothing can climb out of the target folder, hide, look like an option,
/// name a device, or disguise its extension with bidirectional controls.
/// </summary>
public static class SafeFileName
{
    /// <summary>The name used when nothing usable is left.</summary>
    public const string Fallback = "download";

    /// <summary>Longest result in UTF-8 bytes (file systems allow 255; room is left for " (n)" and prefixes).</summary>
    public const int MaxBytes = 200;

    private const int MaxExtensionBytes = 32;

    /// <summary>A safe file name for <paramref name="announced"/> (never empty, never a path).</summary>
    public static string Sanitize(string? announced)
    {
        if (string.IsNullOrEmpty(announced))
        {
            return Fallback;
        }

        // Only the last component: "../../etc/passwd" is "passwd", "C:\x" is "x".
        var last = announced.Split('/', '\\').LastOrDefault(p => p.Trim().Trim('.').Length > 0) ?? string.Empty;

        var builder = new StringBuilder(last.Length);
        foreach (var rune in last.EnumerateRunes())
        {
            if (rune == Rune.ReplacementChar)
            {
                // Also what a lone surrogate decodes as.
                continue;
            }
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
            {
                // Cf covers the bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069) and zero-width characters.
                continue;
            }
            if (rune.IsAscii && "<>:\"|?*".Contains((char)rune.Value, StringComparison.Ordinal))
            {
                builder.Append('_');
                continue;
            }
            if (category is UnicodeCategory.SpaceSeparator)
            {
                builder.Append(' ');
                continue;
            }
            builder.Append(rune.ToString());
        }

        var name = builder.ToString();
        while (name.Contains("..", StringComparison.Ordinal))
        {
            name = name.Replace("..", ".", StringComparison.Ordinal);
        }
        // Leading dot hides the file, leading dash reads as an option; trailing dots and spaces are dropped by Windows.
        name = name.TrimStart('.', '-', ' ').TrimEnd('.', ' ');
        name = CapLength(name);
        if (name.Length == 0)
        {
            return Fallback;
        }
        if (IsDeviceName(name))
        {
            name = "_" + name;
        }
        return name;
    }

    /// <summary>True for Windows reserved device names, with or without an extension (<c>CON</c>, <c>nul.txt</c>, <c>COM1.tar.gz</c>).</summary>
    internal static bool IsDeviceName(string name)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        var stem = (dot < 0 ? name : name[..dot]).TrimEnd(' ').ToUpperInvariant();
        return stem switch
        {
            "CON" or "PRN" or "AUX" or "NUL" or "CONIN$" or "CONOUT$" => true,
            _ => stem.Length == 4 && (stem.StartsWith("COM", StringComparison.Ordinal) || stem.StartsWith("LPT", StringComparison.Ordinal))
                 && (char.IsAsciiDigit(stem[3]) || stem[3] is '¹' or '²' or '³'),
        };
    }

    private static string CapLength(string name)
    {
        if (Encoding.UTF8.GetByteCount(name) <= MaxBytes)
        {
            return name;
        }
        var dot = name.LastIndexOf('.');
        var extension = dot > 0 ? name[dot..] : string.Empty;
        if (Encoding.UTF8.GetByteCount(extension) > MaxExtensionBytes)
        {
            extension = string.Empty;
        }
        var stem = extension.Length > 0 ? name[..dot] : name;
        var budget = MaxBytes - Encoding.UTF8.GetByteCount(extension);
        var kept = new StringBuilder();
        var used = 0;
        foreach (var rune in stem.EnumerateRunes())
        {
            if (used + rune.Utf8SequenceLength > budget)
            {
                break;
            }
            kept.Append(rune.ToString());
            used += rune.Utf8SequenceLength;
        }
        return (kept.ToString().TrimEnd('.', ' ') + extension).TrimEnd('.', ' ');
    }
}
