using System.Text.RegularExpressions;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests;

/// <summary>The examples in README.md are the program's real output: every Peer ID shown has the fingerprint shown beside it.</summary>
public sealed partial class ReadmeExampleTests
{
    [Fact]
    public void Every_example_peer_id_in_the_readme_has_its_own_fingerprint_beside_it()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var pairs = IdOutput().Matches(readme);
        Assert.True(pairs.Count >= 2, "README.md should show Alice's and Bob's 'securemesh id' output");
        foreach (Match pair in pairs)
        {
            var id = PeerId.Parse(pair.Groups[1].Value);
            Assert.Equal(id.Fingerprint, pair.Groups[2].Value);
        }

        // Each --fingerprint in a command is the one of the Peer ID it is given with (the README's shortened form
        // "12D3KooWNRPf…" names the full Peer ID shown above).
        foreach (Match add in FingerprintOption().Matches(readme))
        {
            var prefix = add.Groups[1].Value;
            var full = pairs.Select(p => PeerId.Parse(p.Groups[1].Value)).Single(p => p.Text.StartsWith(prefix, StringComparison.Ordinal));
            Assert.Equal(full.Fingerprint, add.Groups[2].Value);
        }
    }

    [Fact]
    public void The_readme_test_command_is_test_sh_and_ci_runs_exactly_it()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains("```sh\n./test.sh\n```", readme, StringComparison.Ordinal);
        var ci = File.ReadAllLines(Path.Combine(root, ".ci", "run")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal("exec ./test.sh", ci[^1]);
        var script = File.ReadAllText(Path.Combine(root, "test.sh"));
        Assert.Contains("dotnet test SecureMesh.sln", script, StringComparison.Ordinal);
        foreach (var package in new[] { "clamav", "nodejs", "npm", "tmux", "openssh-client", "iproute2", "nftables", "miniupnpd-nftables", "curl", "util-linux", "clang" })
        {
            Assert.Contains($"need+=({package})", script, StringComparison.Ordinal);
            Assert.Contains($"`{package}`", readme, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_ci_publishes_the_aot_build_with_the_readme_install_command_and_runs_the_process_tests_against_it()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        var script = File.ReadAllText(Path.Combine(root, "test.sh"));
        const string Install = "dotnet publish src/SecureMesh.Cli -c Release -r linux-x64 -o ";
        Assert.Contains("`" + Install + "~/.local/share/securemesh-bin`", readme, StringComparison.Ordinal);
        Assert.Contains(Install + "\"$aot\"", script, StringComparison.Ordinal);
        Assert.Contains("SECUREMESH_EXE=\"$aot/securemesh\" dotnet test tests/SecureMesh.IntegrationTests", script, StringComparison.Ordinal);
        Assert.Contains("AotExecutableTests", script, StringComparison.Ordinal);
        Assert.Contains("TuiStartTests", script, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
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

    [GeneratedRegex(@"Peer ID:\s+(12D3KooW[1-9A-HJ-NP-Za-km-z]+)\s*\nFingerprint:\s+([a-z0-9-]+)")]
    private static partial Regex IdOutput();

    [GeneratedRegex(@"peers add (12D3KooW[1-9A-HJ-NP-Za-km-z]+)… [^\n]*--fingerprint ([a-z0-9-]+)")]
    private static partial Regex FingerprintOption();
}
