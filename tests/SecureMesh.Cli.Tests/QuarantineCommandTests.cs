using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests;

public sealed class QuarantineCommandTests : IDisposable
{
    private const string Cid = "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
    private const string OtherCid = "b3:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>Puts a file through the real pipeline with a scanner script that flags everything; returns its ID.</summary>
    private long SeedHeld(string cid, string announcedName, string content)
    {
        var script = Path.Combine(_cli.Root, "flagger");
        File.WriteAllText(script, "#!/bin/sh\necho \"$1: Test.Sig FOUND\"\nexit 1\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var db = SecureMeshDatabase.Open(_cli.Home);
        using var identity = NodeIdentity.Generate();
        db.Trust.AddPeer(identity.PeerId, "alice", null, trusted: true);
        var manager = new QuarantineManager(db, _cli.Home, new ScannerRunner(script, TimeSpan.FromSeconds(20)));
        var data = System.Text.Encoding.UTF8.GetBytes(content);
        var item = manager.BeginDownload(cid, announcedName, data.Length, identity.PeerId, [identity.PeerId]);
        using (var part = manager.OpenPart(item.Id))
        {
            part.Write(data);
        }
        var outcome = manager.CompleteAsync(item.Id, (_, _) => Task.FromResult(true), CancellationToken.None).GetAwaiter().GetResult();
        Assert.False(outcome.Released);
        return item.Id;
    }

    [Fact]
    public void List_json_is_empty_at_first_and_text_says_so()
    {
        var json = _cli.Home_("quarantine", "list", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal(0, doc.RootElement.GetArrayLength());
        Assert.Contains("quarantine is empty", _cli.Home_("quarantine", "list").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void List_and_show_give_the_fixed_json_keys_and_the_reason()
    {
        var id = SeedHeld(Cid, "../../evil\u202Etxt.exe", "bad bytes");

        var list = _cli.Home_("quarantine", "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        using var doc = JsonDocument.Parse(list.Out);
        var item = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(id, item.GetProperty("id").GetInt64());
        Assert.Equal(Cid, item.GetProperty("contentId").GetString());
        Assert.Equal("eviltxt.exe", item.GetProperty("name").GetString());
        Assert.Equal("held", item.GetProperty("state").GetString());
        Assert.StartsWith("scanner 'flagger' flagged the file:", item.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("../../evil\u202Etxt.exe", item.GetProperty("announcedName").GetString());

        var show = _cli.Home_("quarantine", "show", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        Assert.True(show.ExitCode == 0, show.ToString());
        using var one = JsonDocument.Parse(show.Out);
        Assert.Equal("held", one.RootElement.GetProperty("state").GetString());
        Assert.Equal(9, one.RootElement.GetProperty("size").GetInt64());

        var text = _cli.Home_("quarantine", "list");
        Assert.Contains("Test.Sig FOUND", text.Out, StringComparison.Ordinal);
        Assert.Contains("eviltxt.exe", text.Out, StringComparison.Ordinal);
        var showText = _cli.Home_("quarantine", "show", "1");
        Assert.Contains("publisher", showText.Out, StringComparison.Ordinal);
        Assert.DoesNotContain('\u202E', showText.Out);
        Assert.Contains("../../evil\\u{202E}txt.exe", showText.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void List_shows_sizes_as_share_list_does_and_the_reason_once()
    {
        SeedHeld(Cid, "big.bin", new string('x', 1_234_567));
        var text = _cli.Home_("quarantine", "list");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains(" 1,234,567 ", text.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("1234567", text.Out, StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(text.Out + text.Err, "Test.Sig FOUND"));
        Assert.Contains("1,234,567", _cli.Home_("quarantine", "show", "1").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_set_scanner_checks_that_the_program_exists_and_can_run()
    {
        _cli.Environment["PATH"] = "/usr/bin:/bin";
        var missing = _cli.Home_("config", "set", "scanner", "no-such-scanner-xyz --no-summary {}");
        Assert.True(missing.ExitCode == 1, missing.ToString());
        Assert.Equal(["error: scanner program 'no-such-scanner-xyz' was not found on PATH (install it, or give its full path); the setting is unchanged"], missing.ErrLines);

        var notExecutable = Path.Combine(_cli.Root, "scan.sh");
        File.WriteAllText(notExecutable, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(notExecutable, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var refused = _cli.Home_("config", "set", "scanner", $"{notExecutable} {{}}");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("is not executable", refused.Err, StringComparison.Ordinal);
        var directory = _cli.Home_("config", "set", "scanner", _cli.Root);
        Assert.Contains("is a directory", directory.Err, StringComparison.Ordinal);
        Assert.Equal(string.Empty, _cli.Home_("config", "get", "scanner").Out.Trim());

        // A malformed command line is a usage error.
        Assert.Equal(2, _cli.Home_("config", "set", "scanner", "'unclosed").ExitCode);

        File.SetUnixFileMode(notExecutable, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.Equal(0, _cli.Home_("config", "set", "scanner", $"{notExecutable} {{}}").ExitCode);
        Assert.Equal(0, _cli.Home_("config", "set", "scanner", "sh -c 'exit 0'").ExitCode);
        Assert.Equal("sh -c 'exit 0'", _cli.Home_("config", "get", "scanner").Out.Trim());
        // Empty turns scanning off without any program to check.
        Assert.Equal(0, _cli.Home_("config", "set", "scanner", "").ExitCode);
    }

    [Fact]
    public void Release_moves_the_file_and_a_second_release_is_a_clear_failure()
    {
        var id = SeedHeld(Cid, "report.txt", "contents").ToString(System.Globalization.CultureInfo.InvariantCulture);
        var target = Path.Combine(_cli.Root, "out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "report.txt"), "mine");

        var release = _cli.Home_("quarantine", "release", id, "--to", target);
        Assert.True(release.ExitCode == 0, release.ToString());
        Assert.Contains(Path.Combine(target, "report (1).txt"), release.Out, StringComparison.Ordinal);
        Assert.Equal("contents", File.ReadAllText(Path.Combine(target, "report (1).txt")));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(target, "report.txt")));

        var log = _cli.Home_("log", "--json");
        using var doc = JsonDocument.Parse(log.Out);
        var last = doc.RootElement.EnumerateArray().Last();
        Assert.Equal("quarantine.released", last.GetProperty("event").GetString());
        Assert.Contains("held_reason=", last.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var again = _cli.Home_("quarantine", "release", id, "--to", target);
        Assert.Equal(1, again.ExitCode);
        Assert.Single(again.ErrLines);
        Assert.Contains("already released", again.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_ids_fail_with_exit_1_and_malformed_ones_with_exit_2()
    {
        foreach (var args in new[] { new[] { "show", "99" }, ["release", "99"], ["delete", "99"], ["show", "abc"] })
        {
            var result = _cli.Home_(["quarantine", .. args]);
            // A malformed ID is a usage error (2); a well-formed one that names nothing is a failure (1).
            Assert.True(result.ExitCode == (args[1] == "abc" ? 2 : 1), result.ToString());
            Assert.Single(result.ErrLines);
            Assert.Contains(args[1] == "abc" ? "invalid quarantine ID" : "no quarantine item 99", result.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Blocked_content_cannot_be_released_and_a_deleted_item_cannot_either()
    {
        var blocked = SeedHeld(Cid, "a.txt", "aaa").ToString(System.Globalization.CultureInfo.InvariantCulture);
        var other = SeedHeld(OtherCid, "b.txt", "bbb").ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, _cli.Home_("block", "content", Cid).ExitCode);

        var refused = _cli.Home_("quarantine", "release", blocked, "--to", Path.Combine(_cli.Root, "out"));
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("is blocked", refused.Err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_cli.Root, "out")) && Directory.EnumerateFiles(Path.Combine(_cli.Root, "out")).Any());

        var delete = _cli.Home_("quarantine", "delete", other);
        Assert.True(delete.ExitCode == 0, delete.ToString());
        Assert.Single(Directory.EnumerateFiles(Path.Combine(_cli.Home, "quarantine")));
        var afterDelete = _cli.Home_("quarantine", "release", other);
        Assert.Equal(1, afterDelete.ExitCode);
        Assert.Contains("deleted", afterDelete.Err, StringComparison.Ordinal);
        var deleteAgain = _cli.Home_("quarantine", "delete", other);
        Assert.Equal(1, deleteAgain.ExitCode);
    }
}
