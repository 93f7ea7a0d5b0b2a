namespace SecureMesh.Core.Tests.ThreatModel;

/// <summary>
/// threat-model/threats.md is the single source of truth for threats and the tests that prove their mitigations: each
/// row must name tests that exist and run, and the threats every P2P file-sharing tool faces must all have a row.
/// </summary>
public sealed class ThreatModelTests
{
    /// <summary>Threats that must have a row (any one of the words in each entry, in the threat column).</summary>
    internal static readonly string[][] RequiredThreats =
    [
        ["impersonat"],
        ["man in the middle", "man-in-the-middle"],
        ["misbinding"],
        ["key theft", "stolen key"],
        ["replay"],
        ["downgrade"],
        ["flood"],
        ["slowloris", "slow-loris"],
        ["oversized", "malformed"],
        ["chunk poisoning", "poisoned chunk"],
        ["manifest forgery", "forged manifest"],
        ["content swap", "swapped after indexing", "changed on disk"],
        ["malware", "virus"],
        ["illegal", "unwanted content"],
        ["path traversal"],
        ["terminal escape"],
        ["sql injection"],
        ["audit-log tampering", "audit log tampering"],
        ["beacon"],
        ["sybil"],
        ["resource exhaustion"],
        ["information leak", "leaks through errors"],
    ];

    internal const int MinimumRows = 22;

    [Fact]
    public void Every_threat_row_names_tests_that_exist_and_every_required_threat_has_a_row()
    {
        var root = RepositoryRoot();
        var markdown = File.ReadAllText(Path.Combine(root, "threat-model", "threats.md"));
        var known = KnownTests.Scan(Path.Combine(root, "tests"));
        Assert.True(known.Count > 300, $"only {known.Count} tests found under tests/: the scanner is broken");

        var problems = ThreatTable.Check(markdown, known, MinimumRows, RequiredThreats);
        Assert.True(problems.Count == 0, $"threat-model/threats.md has {problems.Count} problem(s):\n{string.Join("\n", problems)}");
    }

    [Fact]
    public void The_checker_fails_on_a_doctored_table_and_names_the_offending_rows()
    {
        var known = KnownTests.FromSources([("A/RealTests.cs", Source)]);
        const string Doctored = """
            | id | threat | component | mitigation | tests |
            |---|---|---|---|---|
            | T-01 | impersonation | channel | signature | `RealTests.Proves_it`, `Also_proves_it` |
            | T-02 | replay | channel | nonces | `RealTests.Does_not_exist` |
            | T-03 | downgrade | channel | one suite | none yet |
            | T-04 | flood | listener | caps | `OtherTests.Proves_it` |
            | T-05 | malware | quarantine | scanner | `Helper_not_a_test` |
            | T-06 | sybil | node | budget | `Skipped_test` |
            | T-07 | beacon forgery | discovery | `RealTests.Proves_it` |
            | T-02 | duplicate | channel | x | `Proves_it` |
            | T-08 | leaks | cli | redaction | `not a name!` |
            | T-09 |  | cli |  | `Proves_it` |
            """;

        var problems = ThreatTable.Check(Doctored, known, minimumRows: 20, [["impersonat"], ["terminal escape"]]);
        var text = string.Join("\n", problems);

        Assert.DoesNotContain(problems, p => p.StartsWith("T-01 ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-02 (line 4)", StringComparison.Ordinal) && p.Contains("`RealTests.Does_not_exist` is not a [Fact] or [Theory]", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-03 ", StringComparison.Ordinal) && p.Contains("names no test", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-04 ", StringComparison.Ordinal) && p.Contains("no file declaring class OtherTests", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-05 ", StringComparison.Ordinal) && p.Contains("`Helper_not_a_test` is not a [Fact]", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-06 ", StringComparison.Ordinal) && p.Contains("is skipped", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-07 ", StringComparison.Ordinal) && p.Contains("4 cells", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-02 (lines 4, 10)", StringComparison.Ordinal) && p.Contains("more than once", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-08 ", StringComparison.Ordinal) && p.Contains("is not a test name", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("T-09 ", StringComparison.Ordinal) && p.Contains("empty", StringComparison.Ordinal));
        Assert.Contains("the table has 10 threat rows; at least 20 are expected", problems);
        Assert.Contains("no row's threat mentions \"terminal escape\"", problems);
        Assert.DoesNotContain("\"impersonat\"", text, StringComparison.Ordinal);

        // The same table, repaired, passes.
        const string Repaired = """
            | T-01 | impersonation | channel | signature | `RealTests.Proves_it`, `Also_proves_it` |
            | T-02 | replay | channel | nonces | `RealTests.Proves_it` |
            | T-03 | terminal escape injection | ui | sanitizer | `Also_proves_it` |
            """;
        Assert.Empty(ThreatTable.Check(Repaired, known, minimumRows: 3, [["impersonat"], ["terminal escape"]]));
    }

    [Fact]
    public void Method_names_grouped_after_their_class_are_checked_against_that_class()
    {
        Assert.Equal(["RealTests.Proves_it", "RealTests.Also_proves_it", "OtherTests.Proves_it", "Proves_it"],
            ThreatTable.TestsIn("RealTests: `Proves_it`, `Also_proves_it`; OtherTests: `Proves_it`; `Proves_it`"));
        var known = KnownTests.FromSources([("A/RealTests.cs", Source)]);
        Assert.Empty(ThreatTable.Check("| T-01 | impersonation | channel | signature | RealTests: `Proves_it`, `Also_proves_it` |", known, 1, []));
        var wrongClass = ThreatTable.Check("| T-01 | impersonation | channel | signature | OtherTests: `Proves_it` |", known, 1, []);
        Assert.Contains(wrongClass, p => p.Contains("no file declaring class OtherTests", StringComparison.Ordinal));
    }

    [Fact]
    public void The_scanner_finds_facts_and_theories_behind_data_attributes_and_ignores_helpers_and_comments()
    {
        var known = KnownTests.FromSources([("A/RealTests.cs", Source)]);
        Assert.Null(known.Problem("Proves_it"));
        Assert.Null(known.Problem("RealTests.Proves_it"));
        Assert.Null(known.Problem("Also_proves_it"));
        Assert.Null(known.Problem("RealTests.Async_theory_with_bracketed_data"));
        Assert.NotNull(known.Problem("Helper_not_a_test"));
        Assert.NotNull(known.Problem("Commented_out"));
        Assert.NotNull(known.Problem("Block_commented_out"));
        Assert.Equal("is skipped", known.Problem("Skipped_test"));
        Assert.Null(known.Problem("Root_only"));
        Assert.NotNull(known.Problem("OtherTests.Proves_it"));
    }

    // Built from pieces so this file's own text does not read as tests to the scanner.
    private const string F = "Fact";
    private const string T = "Theory";
    private const string R = "RootFact";

    private static readonly string Source = $$"""
        namespace X;

        public sealed class RealTests
        {
            [{{F}}]
            public void Proves_it() { }

            [{{T}}]
            [InlineData(new byte[] { 0x01, 0x02 })]
            [InlineData(new byte[] { 0x03 })]
            public async Task Async_theory_with_bracketed_data(byte[] data) { await Task.Yield(); }

            [{{F}}(DisplayName = "x")]
            public void Also_proves_it() { }

            public void Helper_not_a_test() { }

            [{{F}}(Skip = "flaky")]
            public void Skipped_test() { }

            [{{R}}("network namespaces")]
            public void Root_only() { }

            // [{{F}}]
            // public void Commented_out() { }

            /*
            [{{F}}]
            public void Block_commented_out() { }
            */
        }
        """;

    /// <summary>The folder holding SecureMesh.sln, found by walking up from the test's output folder.</summary>
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SecureMesh.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"SecureMesh.sln not found above {AppContext.BaseDirectory}");
    }
}
