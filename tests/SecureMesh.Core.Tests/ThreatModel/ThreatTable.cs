using System.Text.RegularExpressions;

namespace SecureMesh.Core.Tests.ThreatModel;

/// <summary>One row of the threat table: <c>| T-NN | threat | component | mitigation | tests |</c>.</summary>
internal sealed record ThreatRow(int Line, string Id, string Threat, string Component, string Mitigation, IReadOnlyList<string> Tests, int Cells);

/// <summary>
/// Reads the threat table of <c>threat-model/threats.md</c> and checks it against the tests that exist: every row names at
/// least one test, each method name in backticks (grouped after its class: <c>Class: `Method`, `Method`</c>; <c>`Class.Method`</c>
/// is read too), and every name is a [Fact] or [Theory] of that class.
/// </summary>
internal static partial class ThreatTable
{
    /// <summary>Rows whose first cell is a threat ID (<c>T-</c> and digits); other lines are ignored.</summary>
    public static IReadOnlyList<ThreatRow> Parse(string markdown)
    {
        ArgumentNullException.ThrowIfNull(markdown);
        var rows = new List<ThreatRow>();
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (!line.StartsWith('|'))
            {
                continue;
            }
            var cells = SplitCells(line);
            if (cells.Count == 0 || !ThreatId().IsMatch(cells[0]))
            {
                continue;
            }
            var tests = cells.Count >= 5 ? TestsIn(cells[^1]) : [];
            rows.Add(new ThreatRow(i + 1, cells[0], Cell(cells, 1), Cell(cells, 2), Cell(cells, 3), tests, cells.Count));
        }
        return rows;
    }

    /// <summary>Every problem with the table, one line each; empty when it is sound.</summary>
    public static IReadOnlyList<string> Check(string markdown, KnownTests known, int minimumRows, IReadOnlyList<string[]> requiredThreats)
    {
        ArgumentNullException.ThrowIfNull(known);
        ArgumentNullException.ThrowIfNull(requiredThreats);
        var rows = Parse(markdown);
        var problems = new List<string>();
        if (rows.Count < minimumRows)
        {
            problems.Add($"the table has {rows.Count} threat rows; at least {minimumRows} are expected");
        }
        foreach (var duplicate in rows.GroupBy(r => r.Id, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            problems.Add($"{duplicate.Key} (lines {string.Join(", ", duplicate.Select(r => r.Line))}): the ID is used more than once");
        }
        foreach (var row in rows)
        {
            var where = $"{row.Id} (line {row.Line})";
            if (row.Cells != 5)
            {
                problems.Add($"{where}: {row.Cells} cells; the form is | T-NN | threat | component | mitigation | tests |");
                continue;
            }
            if (row.Threat.Length == 0 || row.Mitigation.Length == 0)
            {
                problems.Add($"{where}: the threat or the mitigation is empty");
            }
            if (row.Tests.Count == 0)
            {
                problems.Add($"{where}: names no test (write them as Class: `Method`, `Method`)");
            }
            foreach (var test in row.Tests)
            {
                if (!TestName().IsMatch(test))
                {
                    problems.Add($"{where}: `{test}` is not a test name (a method name, after its class)");
                }
                else if (known.Problem(test) is { } problem)
                {
                    problems.Add($"{where}: `{test}` {problem}");
                }
            }
        }
        foreach (var alternatives in requiredThreats)
        {
            if (!rows.Any(r => alternatives.Any(a => r.Threat.Contains(a, StringComparison.OrdinalIgnoreCase))))
            {
                problems.Add($"no row's threat mentions {string.Join(" or ", alternatives.Select(a => $"\"{a}\""))}");
            }
        }
        return problems;
    }

    /// <summary>Splits a table line into trimmed cells; <c>\|</c> is a pipe inside a cell.</summary>
    private static List<string> SplitCells(string line)
    {
        var cells = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 1; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '\\' && i + 1 < line.Length && line[i + 1] == '|')
            {
                current.Append('|');
                i++;
            }
            else if (c == '|')
            {
                cells.Add(current.ToString().Trim());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }
        if (current.ToString().Trim().Length > 0)
        {
            cells.Add(current.ToString().Trim()); // a row without its closing pipe
        }
        return cells;
    }

    /// <summary>
    /// The tests a cell names. Method names stand in backticks exactly as declared; a group may start with its class,
    /// <c>HardeningTests: `A_test`, `Another_test`; OtherTests: `Third`</c>, and those come back as <c>Class.Method</c>
    /// so that the class is checked too. <c>`Class.Method`</c> is read as well.
    /// </summary>
    internal static List<string> TestsIn(string cell)
    {
        var tests = new List<string>();
        foreach (var group in cell.Split(';'))
        {
            var prefix = GroupClass().Match(group);
            var owner = prefix.Success ? prefix.Groups[1].Value : null;
            foreach (Match m in CodeSpan().Matches(group))
            {
                var name = m.Groups[1].Value.Trim();
                tests.Add(owner is not null && !name.Contains('.', StringComparison.Ordinal) ? $"{owner}.{name}" : name);
            }
        }
        return tests;
    }

    private static string Cell(List<string> cells, int index) => index < cells.Count ? cells[index] : string.Empty;

    [GeneratedRegex(@"^T-\d+$")]
    private static partial Regex ThreatId();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")]
    private static partial Regex TestName();

    [GeneratedRegex(@"^\s*([A-Za-z_]\w*)\s*:")]
    private static partial Regex GroupClass();
}

/// <summary>The [Fact] and [Theory] methods found in C# sources, with the classes declared in each method's file.</summary>
internal sealed partial class KnownTests
{
    private readonly Dictionary<string, List<(string File, HashSet<string> Classes, bool Skipped)>> _methods = new(StringComparer.Ordinal);

    /// <summary>Scans every .cs file under <paramref name="testsRoot"/> (bin and obj left out).</summary>
    public static KnownTests Scan(string testsRoot)
    {
        var files = Directory.EnumerateFiles(testsRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or "node_modules"));
        return FromSources(files.Select(f => (Path.GetRelativePath(testsRoot, f), File.ReadAllText(f))));
    }

    /// <summary>Reads tests from (path, source text) pairs.</summary>
    public static KnownTests FromSources(IEnumerable<(string Path, string Text)> sources)
    {
        var known = new KnownTests();
        foreach (var (path, raw) in sources)
        {
            var text = LineComment().Replace(BlockComment().Replace(raw, " "), string.Empty);
            var classes = TypeDeclaration().Matches(text).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            foreach (Match attribute in TestAttribute().Matches(text))
            {
                // The method is the first declaration after the attribute; data attributes (InlineData, MemberData) may
                // come between, brackets inside them included.
                var method = MethodDeclaration().Match(text, attribute.Index + attribute.Length);
                if (!method.Success)
                {
                    continue;
                }
                var skipped = attribute.Groups["args"].Value.Contains("Skip", StringComparison.Ordinal);
                var name = method.Groups[1].Value;
                if (!known._methods.TryGetValue(name, out var list))
                {
                    known._methods[name] = list = [];
                }
                list.Add((path, classes, skipped));
            }
        }
        return known;
    }

    /// <summary>How many test methods were found (each name once).</summary>
    public int Count => _methods.Count;

    /// <summary>Null when <paramref name="name"/> (<c>Method</c> or <c>Class.Method</c>) is a test that runs; else what is wrong.</summary>
    public string? Problem(string name)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        var method = dot < 0 ? name : name[(dot + 1)..];
        var type = dot < 0 ? null : name[..dot];
        if (!_methods.TryGetValue(method, out var found))
        {
            return "is not a [Fact] or [Theory] in any .cs file under tests/";
        }
        var matching = type is null ? found : [.. found.Where(f => f.Classes.Contains(type))];
        if (matching.Count == 0)
        {
            return $"is a test in {string.Join(", ", found.Select(f => f.File))}, but no file declaring class {type} has it";
        }
        return matching.All(f => f.Skipped) ? "is skipped" : null;
    }

    // RootFact: a Fact that runs as root and is skipped (with its reason) for other users (tests/Shared/RootFactAttribute.cs).
    [GeneratedRegex(@"\[\s*(?:Xunit\.)?(?:Fact|Theory|RootFact)(?:Attribute)?\b(?<args>\s*\([^)]*\))?")]
    private static partial Regex TestAttribute();

    [GeneratedRegex(@"\b(?:void|Task|ValueTask)\s+([A-Za-z_]\w*)\s*\(")]
    private static partial Regex MethodDeclaration();

    [GeneratedRegex(@"\b(?:class|record|struct)\s+([A-Za-z_]\w*)")]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"(?m)^\s*//.*$")]
    private static partial Regex LineComment();

    // Only comments that open a line: "/*" inside a string (a glob, a SQL payload) must not swallow code.
    [GeneratedRegex(@"(?ms)^\s*/\*.*?\*/")]
    private static partial Regex BlockComment();
}
