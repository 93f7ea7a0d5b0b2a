using System.Text.Json;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests;

public sealed class IdentityCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    private static string Fixture(string name) =>
        Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    [Fact]
    public void Init_then_id_json_prints_a_libp2p_peer_id_and_nothing_is_readable_by_others()
    {
        var init = _cli.Home_("init");
        Assert.True(init.ExitCode == 0, init.ToString());

        var id = _cli.Home_("id", "--json");
        Assert.True(id.ExitCode == 0, id.ToString());
        using var doc = JsonDocument.Parse(id.Out);
        var peerId = doc.RootElement.GetProperty("peerId").GetString();
        Assert.NotNull(peerId);
        Assert.StartsWith("12D3KooW", peerId, StringComparison.Ordinal);
        Assert.Equal(52, peerId.Length);
        Assert.True(PeerId.TryParse(peerId, out _));
        Assert.Equal(PeerId.Parse(peerId).Fingerprint, doc.RootElement.GetProperty("fingerprint").GetString());
        Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("listen").ValueKind);

        var groupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(_cli.Home) & groupOrOther);
        foreach (var entry in Directory.EnumerateFileSystemEntries(_cli.Home, "*", SearchOption.AllDirectories))
        {
            Assert.True((File.GetUnixFileMode(entry) & groupOrOther) == 0, $"{entry} is readable by group or others");
        }
    }

    [Fact]
    public void Id_is_stable_and_matches_between_text_and_json()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var text = _cli.Home_("id");
        var json = _cli.Home_("id", "--json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Contains(doc.RootElement.GetProperty("peerId").GetString()!, text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Init_refuses_to_overwrite_without_force_and_leaves_files_untouched()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var before = Snapshot();
        var again = _cli.Home_("init");
        Assert.Equal(1, again.ExitCode);
        Assert.Single(again.ErrLines);
        Assert.Contains("--force", again.Err, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());

        var forced = _cli.Home_("init", "--force");
        Assert.Equal(0, forced.ExitCode);
        Assert.NotEqual(before, Snapshot());
    }

    [Fact]
    public void Passphrase_from_stdin_protects_the_key_and_a_wrong_one_is_a_clear_error()
    {
        var init = _cli.RunWithInput("correct horse\n", "--home", _cli.Home, "init", "--passphrase-stdin");
        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.DoesNotContain("correct horse", string.Concat(Directory.EnumerateFiles(_cli.Home).Select(File.ReadAllText)), StringComparison.Ordinal);

        // id never needs the passphrase.
        var id = _cli.Home_("id", "--json");
        Assert.Equal(0, id.ExitCode);

        var before = Snapshot();
        var wrong = _cli.RunWithInput("battery staple\n", "--home", _cli.Home, "keys", "export", "--format", "pkcs8", "--passphrase-stdin");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Single(wrong.ErrLines);
        Assert.Contains("passphrase", wrong.Err, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(wrong.Out);
        Assert.Equal(before, Snapshot());

        var right = _cli.RunWithInput("correct horse\n", "--home", _cli.Home, "keys", "export", "--format", "pkcs8", "--passphrase-stdin");
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Contains("BEGIN PRIVATE KEY", right.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Passphrase_from_environment_unlocks_the_key()
    {
        _cli.Environment["SECUREMESH_PASSPHRASE"] = "from the environment";
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var export = _cli.Home_("keys", "export", "--format", "openssh");
        Assert.True(export.ExitCode == 0, export.ToString());
        _cli.Environment.Remove("SECUREMESH_PASSPHRASE");
        var locked = _cli.Home_("keys", "export", "--format", "openssh");
        Assert.Equal(1, locked.ExitCode);
        Assert.Contains("passphrase", locked.Err, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Export_then_import_keeps_the_peer_id()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var original = _cli.Home_("id", "--json").Out;
        var keyFile = Path.Combine(_cli.Root, "exported.key");
        var export = _cli.Home_("keys", "export", "--format", "openssh", "--out", keyFile);
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

        var otherHome = Path.Combine(_cli.Root, "other");
        var import = _cli.Run("--home", otherHome, "keys", "import", keyFile);
        Assert.True(import.ExitCode == 0, import.ToString());
        var imported = _cli.Run("--home", otherHome, "id", "--json").Out;
        using var a = JsonDocument.Parse(original);
        using var b = JsonDocument.Parse(imported);
        Assert.Equal(a.RootElement.GetProperty("peerId").GetString(), b.RootElement.GetProperty("peerId").GetString());
    }

    [Fact]
    public void Export_refuses_to_overwrite_an_existing_file()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var target = Path.Combine(_cli.Root, "exists.txt");
        File.WriteAllText(target, "keep me");
        var export = _cli.Home_("keys", "export", "--format", "pkcs8", "--out", target);
        Assert.Equal(1, export.ExitCode);
        Assert.Equal("keep me", File.ReadAllText(target));
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("rsa")]
    [InlineData("empty")]
    public void Import_of_bad_key_files_fails_clearly_and_leaves_the_identity(string kind)
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var before = Snapshot();
        var path = Path.Combine(_cli.Root, kind);
        switch (kind)
        {
            case "garbage":
                File.WriteAllBytes(path, [0x00, 0xff, 0x13, 0x37, 0x42]);
                break;
            case "rsa":
                File.Copy(Fixture("ssh-rsa"), path);
                break;
            default:
                File.WriteAllText(path, string.Empty);
                break;
        }
        var result = _cli.Home_("keys", "import", path, "--force");
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.ErrLines);
        Assert.StartsWith("error: ", result.ErrLines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());
    }

    [Fact]
    public void Import_of_a_missing_file_fails_clearly()
    {
        var result = _cli.Home_("keys", "import", Path.Combine(_cli.Root, "nope"));
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.ErrLines);
        Assert.False(Directory.Exists(_cli.Home) && File.Exists(Path.Combine(_cli.Home, IdentityStore.PrivateKeyFileName)));
    }

    [Fact]
    public void A_corrupted_or_truncated_key_file_is_a_clear_error_and_is_not_rewritten()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var keyPath = Path.Combine(_cli.Home, IdentityStore.PrivateKeyFileName);
        var bytes = File.ReadAllBytes(keyPath);
        File.WriteAllBytes(keyPath, bytes[..(bytes.Length / 2)]);
        var truncated = File.ReadAllBytes(keyPath);
        var result = _cli.Home_("keys", "export", "--format", "pkcs8");
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.ErrLines);
        Assert.Equal(truncated, File.ReadAllBytes(keyPath));
    }

    [Fact]
    public void A_corrupted_public_file_makes_id_fail_clearly()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        File.WriteAllText(Path.Combine(_cli.Home, IdentityStore.PublicKeyFileName), "not a key");
        var result = _cli.Home_("id");
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.ErrLines);
    }

    [Fact]
    public void Id_without_an_identity_says_to_run_init()
    {
        var result = _cli.Home_("id");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("init", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("keys", "export")]
    [InlineData("keys", "export", "--format", "der")]
    [InlineData("id", "--no-such-flag")]
    public void Usage_errors_exit_2(params string[] args)
    {
        var result = _cli.Home_(args);
        Assert.Equal(2, result.ExitCode);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unwritable_home_is_a_clear_error()
    {
        var blocker = Path.Combine(_cli.Root, "file");
        File.WriteAllText(blocker, "a file, not a directory");
        var result = _cli.Run("--home", Path.Combine(blocker, "home"), "init");
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.ErrLines);
        Assert.Equal("a file, not a directory", File.ReadAllText(blocker));
    }

    [Fact]
    public void Verbose_adds_the_stack_trace_only_when_asked()
    {
        var quiet = _cli.Run("--home", "/proc/definitely/not/here", "init");
        Assert.Equal(1, quiet.ExitCode);
        Assert.Single(quiet.ErrLines);
        var verbose = _cli.Run("--home", "/proc/definitely/not/here", "init", "--verbose");
        Assert.Equal(1, verbose.ExitCode);
        Assert.True(verbose.ErrLines.Length > 1);
    }

    private Dictionary<string, string> Snapshot() =>
        Directory.Exists(_cli.Home)
            ? Directory.EnumerateFiles(_cli.Home).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(File.ReadAllBytes(f)))
            : [];
}

public sealed class ImportInteropTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Theory]
    [InlineData("ssh-ed25519", "ssh-ed25519.pub")]
    [InlineData("pkcs8-ed25519.pem", "pkcs8-ed25519.pub.pem")]
    public void Imported_key_has_the_peer_id_js_libp2p_computes(string fixture, string vectorSource)
    {
        var fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");
        using var vectors = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtures, "peerid-vectors.json")));
        var expected = vectors.RootElement.EnumerateArray()
            .Single(v => v.GetProperty("source").GetString() == vectorSource)
            .GetProperty("peerId").GetString();

        var import = _cli.Home_("keys", "import", Path.Combine(fixtures, fixture));
        Assert.True(import.ExitCode == 0, import.ToString());
        using var id = JsonDocument.Parse(_cli.Home_("id", "--json").Out);
        Assert.Equal(expected, id.RootElement.GetProperty("peerId").GetString());
    }

    [Fact]
    public void Exported_openssh_key_reads_back_with_ssh_keygen_to_the_same_public_key()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var keyFile = Path.Combine(_cli.Root, "id_ed25519");
        Assert.Equal(0, _cli.Home_("keys", "export", "--format", "openssh", "--out", keyFile).ExitCode);
        var psi = new System.Diagnostics.ProcessStartInfo("ssh-keygen", ["-y", "-f", keyFile]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
        var blob = Convert.FromBase64String(output.Split(' ')[1]);
        // ssh wire format: string "ssh-ed25519", string key(32)
        var key = blob[^32..];
        using var id = JsonDocument.Parse(_cli.Home_("id", "--json").Out);
        Assert.Equal(id.RootElement.GetProperty("peerId").GetString(), PeerId.FromPublicKey(key).Text);
    }
}
