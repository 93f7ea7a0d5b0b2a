using System.Text;
using System.Text.RegularExpressions;

namespace SecureMesh.Core.Content;

/// <summary>
/// The rules of one <c>.smignore</c> file, in gitignore syntax: blank lines and <c>#</c> comments are skipped; <c>*</c>
/// matches within a name, <c>?</c> one character, <c>[…]</c> a class; <c>**/</c>, <c>/**/</c> and <c>/**</c> span folders;
/// a trailing <c>/</c> matches folders only; a <c>/</c> at the start or in the middle anchors the pattern to the folder
/// holding the file (otherwise it matches a name at any depth below it); <c>!</c> re-includes; <c>\</c> escapes. The
/// last matching rule decides, and a rule of a deeper <c>.smignore</c> overrides one further up.
/// </summary>
public sealed class IgnoreRules
{
    /// <summary>The name of the file holding the rules.</summary>
    public const string FileName = ".smignore";

    /// <summary>The most bytes of a <c>.smignore</c> file that are read; the rest is ignored.</summary>
    public const int MaxBytes = 64 * 1024;

    private const int MaxRules = 1000;
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(200);

    private readonly List<Rule> _rules;

    private IgnoreRules(List<Rule> rules) => _rules = rules;

    /// <summary>Rules that match nothing.</summary>
    public static IgnoreRules Empty { get; } = new([]);

    /// <summary>The number of rules (comments and blank lines are not rules).</summary>
    public int Count => _rules.Count;

    /// <summary>Parses the text of a <c>.smignore</c> file.</summary>
    public static IgnoreRules Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rules = new List<Rule>();
        foreach (var raw in text.Split('\n'))
        {
            if (rules.Count >= MaxRules)
            {
                break;
            }
            var rule = ParseLine(raw.TrimEnd('\r'));
            if (rule is not null)
            {
                rules.Add(rule);
            }
        }
        return new IgnoreRules(rules);
    }

    /// <summary>
    /// True when the entry at <paramref name="relativePath"/> ('/'-separated, relative to the folder of the
    /// <c>.smignore</c>) is excluded, false when a <c>!</c> rule re-includes it, null when no rule matches it.
    /// </summary>
    public bool? Match(string relativePath, bool isDirectory)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        for (var i = _rules.Count - 1; i >= 0; i--)
        {
            var rule = _rules[i];
            if (rule.DirectoryOnly && !isDirectory)
            {
                continue;
            }
            bool matched;
            try
            {
                matched = rule.Pattern.IsMatch(relativePath);
            }
            catch (RegexMatchTimeoutException)
            {
                // A pathological pattern excludes rather than shares.
                matched = true;
            }
            if (matched)
            {
                return !rule.Negated;
            }
        }
        return null;
    }

    private static Rule? ParseLine(string line)
    {
        if (line.Length == 0 || line[0] == '#')
        {
            return null;
        }
        // Trailing spaces are dropped unless escaped with a backslash.
        var end = line.Length;
        while (end > 0 && line[end - 1] == ' ' && !(end >= 2 && line[end - 2] == '\\'))
        {
            end--;
        }
        line = line[..end];
        var negated = false;
        if (line.StartsWith('!'))
        {
            negated = true;
            line = line[1..];
        }
        else if (line.StartsWith("\\!", StringComparison.Ordinal) || line.StartsWith("\\#", StringComparison.Ordinal))
        {
            line = line[1..];
        }
        var directoryOnly = false;
        if (line.EndsWith('/') && !line.EndsWith("\\/", StringComparison.Ordinal))
        {
            directoryOnly = true;
            line = line.TrimEnd('/');
        }
        if (line.Length == 0)
        {
            return null;
        }
        var anchored = line.Contains('/', StringComparison.Ordinal);
        line = line.TrimStart('/');
        if (line.Length == 0)
        {
            return null;
        }
        var regex = new StringBuilder("^");
        if (!anchored)
        {
            regex.Append("(?:.*/)?");
        }
        AppendBody(regex, line);
        regex.Append('$');
        return new Rule(new Regex(regex.ToString(), RegexOptions.CultureInvariant | RegexOptions.Singleline, MatchTimeout), negated, directoryOnly);
    }

    private static void AppendBody(StringBuilder regex, string pattern)
    {
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*'
                    && (i == 0 || pattern[i - 1] == '/') && (i + 2 == pattern.Length || pattern[i + 2] == '/'):
                    if (i + 2 == pattern.Length)
                    {
                        // "x/**": everything inside x.
                        regex.Append(".*");
                        i++;
                    }
                    else
                    {
                        // "**/x" or "a/**/x": zero or more folders.
                        regex.Append("(?:.*/)?");
                        i += 2;
                    }
                    break;
                case '*':
                    regex.Append("[^/]*");
                    break;
                case '?':
                    regex.Append("[^/]");
                    break;
                case '[':
                    var close = pattern.IndexOf(']', i + 2 <= pattern.Length ? i + 2 : pattern.Length);
                    if (close < 0)
                    {
                        regex.Append("\\[");
                        break;
                    }
                    var body = pattern[(i + 1)..close];
                    regex.Append('[');
                    if (body.StartsWith('!') || body.StartsWith('^'))
                    {
                        regex.Append('^');
                        body = body[1..];
                    }
                    foreach (var b in body)
                    {
                        regex.Append(b is '\\' or '[' or ']' or '^' ? "\\" + b : b.ToString());
                    }
                    regex.Append(']');
                    i = close;
                    break;
                case '\\' when i + 1 < pattern.Length:
                    regex.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
    }

    private sealed record Rule(Regex Pattern, bool Negated, bool DirectoryOnly);
}
