using SecureMesh.Core.Content;

namespace SecureMesh.Core.Tests.Content;

/// <summary><c>.smignore</c> rules in gitignore syntax, checked against what git itself does for the same pattern.</summary>
public sealed class IgnoreRulesTests
{
    [Theory]
    // pattern, path, isDirectory, expected (null: no rule matched)
    [InlineData("*.log", "a.log", false, true)]
    [InlineData("*.log", "deep/er/a.log", false, true)]
    [InlineData("*.log", "a.log.txt", false, null)]
    [InlineData("secret?.txt", "secret1.txt", false, true)]
    [InlineData("secret?.txt", "secret12.txt", false, null)]
    [InlineData("secret?.txt", "x/secret/.txt", false, null)]
    [InlineData("build/", "build", true, true)]
    [InlineData("build/", "build", false, null)]
    [InlineData("build/", "src/build", true, true)]
    [InlineData("/todo.txt", "todo.txt", false, true)]
    [InlineData("/todo.txt", "sub/todo.txt", false, null)]
    [InlineData("doc/frotz", "doc/frotz", false, true)]
    [InlineData("doc/frotz", "a/doc/frotz", false, null)]
    [InlineData("**/keys", "keys", true, true)]
    [InlineData("**/keys", "a/b/keys", false, true)]
    [InlineData("a/**/b", "a/b", false, true)]
    [InlineData("a/**/b", "a/x/y/b", false, true)]
    [InlineData("a/**/b", "c/a/x/b", false, null)]
    [InlineData("private/**", "private/x/y.txt", false, true)]
    [InlineData("private/**", "private", true, null)]
    [InlineData("*", "anything/at/all", false, true)]
    [InlineData("[abc].txt", "b.txt", false, true)]
    [InlineData("[!abc].txt", "b.txt", false, null)]
    [InlineData("[a-c]x", "bx", false, true)]
    [InlineData("\\#hash", "#hash", false, true)]
    [InlineData("# a comment", "# a comment", false, null)]
    [InlineData("\\!bang", "!bang", false, true)]
    [InlineData("a*b", "a/b", false, null)]
    [InlineData("trailing   ", "trailing", false, true)]
    public void One_rule(string pattern, string path, bool isDirectory, bool? expected) =>
        Assert.Equal(expected, IgnoreRules.Parse(pattern).Match(path, isDirectory));

    [Fact]
    public void The_last_matching_rule_decides_and_negation_reincludes()
    {
        var rules = IgnoreRules.Parse("# keep the plan only\n*.md\n!plan.md\n\n  \nplan.md.bak\r\n");
        Assert.Equal(3, rules.Count);
        Assert.True(rules.Match("notes.md", false));
        Assert.False(rules.Match("plan.md", false));
        Assert.False(rules.Match("sub/plan.md", false));
        Assert.True(rules.Match("plan.md.bak", false));
        Assert.Null(rules.Match("plan.txt", false));
        // Once more the other way round: a later exclusion wins over an earlier re-inclusion.
        Assert.True(IgnoreRules.Parse("!x.md\n*.md").Match("x.md", false));
    }

    [Fact]
    public void Regex_metacharacters_in_names_are_literal()
    {
        var rules = IgnoreRules.Parse("a.b(c)+$");
        Assert.True(rules.Match("a.b(c)+$", false));
        Assert.Null(rules.Match("aXb(c)+$", false));
        Assert.Null(rules.Match("a.b(cc)", false));
    }

    [Fact]
    public void An_unclosed_class_and_a_lone_bang_do_not_throw()
    {
        var rules = IgnoreRules.Parse("[abc\n!\n/\n");
        Assert.True(rules.Match("[abc", false));
        Assert.Equal(1, rules.Count);
    }
}
