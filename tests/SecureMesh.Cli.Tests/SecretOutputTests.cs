using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// Errors, stack traces (--verbose), the audit log and the files a command leaves never show the passphrase (right or
/// wrong) or the private key: only <c>keys export</c>, asked for it, prints the key.
/// </summary>
public sealed class SecretOutputTests : IDisposable
{
    private const string Passphrase = "correct horse battery staple 7731";
    private const string Wrong = "Tr0ub4dor&3 wrong guess";
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Failing_commands_with_verbose_never_print_a_passphrase_or_the_private_key()
    {
        var init = _cli.RunWithInput(Passphrase + "\n", "--home", _cli.Home, "init", "--passphrase-stdin", "--verbose");
        Assert.True(init.ExitCode == 0, init.ToString());
        var secrets = Secrets();
        var keyPath = Path.Combine(_cli.Home, IdentityStore.PrivateKeyFileName);
        var goodKey = File.ReadAllBytes(keyPath);
        var results = new List<(string What, CliResult Result)>
        {
            ("init", init),
            ("wrong passphrase on stdin", _cli.RunWithInput(Wrong + "\n", "--home", _cli.Home, "keys", "export", "--format", "openssh", "--passphrase-stdin", "--verbose")),
        };

        _cli.Environment["SECUREMESH_PASSPHRASE"] = Wrong;
        results.Add(("wrong passphrase in the environment", _cli.Home_("keys", "export", "--format", "pkcs8", "--verbose")));
        _cli.Environment.Remove("SECUREMESH_PASSPHRASE");

        var existing = Path.Combine(_cli.Root, "exists.pem");
        File.WriteAllText(existing, "keep me");
        results.Add(("export over an existing file", _cli.RunWithInput(Passphrase + "\n", "--home", _cli.Home, "keys", "export", "--format", "pkcs8", "--out", existing, "--passphrase-stdin", "--verbose")));

        // A damaged copy of the real key, offered for import: the error must not quote what it could not parse.
        var exported = _cli.RunWithInput(Passphrase + "\n", "--home", _cli.Home, "keys", "export", "--format", "pkcs8", "--passphrase-stdin");
        Assert.True(exported.ExitCode == 0, exported.ToString());
        Assert.Contains(secrets[^1], exported.Out, StringComparison.Ordinal); // the one place the key may appear: asked for
        var damaged = Path.Combine(_cli.Root, "damaged.pem");
        File.WriteAllText(damaged, exported.Out.Replace("M", "!", StringComparison.Ordinal));
        results.Add(("import of a damaged key", _cli.Home_("keys", "import", damaged, "--verbose")));

        var flipped = (byte[])goodKey.Clone();
        flipped[^9] ^= 0x04;
        File.WriteAllBytes(keyPath, flipped);
        results.Add(("corrupted key file", _cli.RunWithInput(Passphrase + "\n", "--home", _cli.Home, "keys", "export", "--format", "openssh", "--passphrase-stdin", "--verbose")));
        File.WriteAllBytes(keyPath, goodKey);

        results.Add(("audit log", _cli.Home_("log", "--json", "--verbose")));
        results.Add(("settings", _cli.Home_("config", "list", "--json", "--verbose")));

        foreach (var (what, result) in results)
        {
            foreach (var secret in secrets)
            {
                Assert.False(result.Out.Contains(secret, StringComparison.Ordinal) || result.Err.Contains(secret, StringComparison.Ordinal),
                    $"{what} printed a secret:\n{result}");
            }
        }
        // The failures really ran with --verbose: their stack traces are there, the secrets are not.
        Assert.All(results.Skip(1).Take(5), r => Assert.True(r.Result.ExitCode != 0 && r.Result.ErrLines.Length > 1, $"{r.What}: {r.Result}"));
        Assert.Equal("keep me", File.ReadAllText(existing));

        foreach (var file in Directory.EnumerateFiles(_cli.Home, "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(file);
            var text = System.Text.Encoding.Latin1.GetString(bytes);
            Assert.DoesNotContain(Passphrase, text, StringComparison.Ordinal);
            Assert.DoesNotContain(Wrong, text, StringComparison.Ordinal);
        }
    }

    /// <summary>The passphrases, and the key as hex, as base64 and as the key-specific end of its PKCS#8 export.</summary>
    private List<string> Secrets()
    {
        using var identity = IdentityStore.Load(_cli.Home, () => Passphrase);
        Span<byte> seed = stackalloc byte[NodeIdentity.SeedLength];
        identity.ExportSeed(seed);
        var pem = KeyFormats.ExportPkcs8Pem(identity).Split('\n')[1];
        return [Passphrase, Wrong, Convert.ToHexStringLower(seed)[..16], Convert.ToHexString(seed)[..16], Convert.ToBase64String(seed)[..16], pem[^24..]];
    }
}
