using System.Security.Cryptography;
using System.Text.Json;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests;

/// <summary>The backup commands end to end: the owner through the CLI (which runs its own node), a real holder node on 127.0.0.1.</summary>
public sealed class BackupCommandTests : BackupTestBase
{
    /// <summary>The CLI's home as the owner, a holder node that trusts it and offers 32 MiB, trusted back with its address.</summary>
    private async Task<(PeerId Owner, string Holder, string Address)> OwnerWithHolderAsync()
    {
        var holder = await StartHolderAsync();
        return (holder.Owner, holder.PeerId, holder.Address);
    }

    [Fact]
    public async Task Add_wait_status_check_and_restore_from_an_exported_key()
    {
        var (owner, holder, address) = await OwnerWithHolderAsync();

        var folder = Path.Combine(Cli.Root, "documents");
        Directory.CreateDirectory(folder);
        var data = RandomNumberGenerator.GetBytes(1_500_000);
        await File.WriteAllBytesAsync(Path.Combine(folder, "thesis.pdf"), data);

        // Usage errors are exit 2 and record nothing.
        Assert.Equal(2, Cli.Home_("backup", "add", folder, "--to", holder, "--copies", "2").ExitCode);
        Assert.Equal(2, Cli.Home_("backup", "add", folder, "--to", holder, "--keep", "sometimes").ExitCode);
        var untrusted = Cli.Home_("backup", "add", folder, "--to", NodeIdentity.Generate().PeerId.Text);
        Assert.Equal(1, untrusted.ExitCode);
        Assert.Contains("not a trusted peer", untrusted.Err, StringComparison.Ordinal);
        Assert.Contains("nothing is backed up", Cli.Home_("backup", "list").Out, StringComparison.Ordinal);

        var add = Cli.Home_("backup", "add", folder, "--to", holder, "--keep", "3", "--wait");
        Assert.True(add.ExitCode == 0, add.ToString());
        using (var status = JsonDocument.Parse(Cli.Home_("backup", "status", "--json").Out))
        {
            var share = Assert.Single(status.RootElement.EnumerateArray().ToList());
            Assert.Equal(folder, share.GetProperty("path").GetString());
            var h = Assert.Single(share.GetProperty("holders").EnumerateArray().ToList());
            Assert.Equal(holder, h.GetProperty("peerId").GetString());
            Assert.Equal("complete", h.GetProperty("state").GetString());
            Assert.True(h.GetProperty("bytes").GetInt64() >= data.Length);
            Assert.Equal(JsonValueKind.Null, h.GetProperty("lastProof").ValueKind);
        }
        var check = Cli.Home_("backup", "check");
        Assert.True(check.ExitCode == 0, check.ToString());
        using (var status = JsonDocument.Parse(Cli.Home_("backup", "status", "--json").Out))
        {
            Assert.Equal(JsonValueKind.String, status.RootElement[0].GetProperty("holders")[0].GetProperty("lastProof").ValueKind);
        }
        Assert.Single(JsonDocument.Parse(Cli.Home_("backup", "versions", Path.Combine(folder, "thesis.pdf"), "--json").Out).RootElement.EnumerateArray());

        // A new machine with only the exported key.
        var keyFile = Path.Combine(Cli.Root, "owner.key");
        Assert.Equal(0, Cli.Home_("keys", "export", "--format", "pkcs8", "--out", keyFile).ExitCode);
        var newHome = Path.Combine(Cli.Root, "new-home");
        Assert.Equal(0, Cli.Run("--home", newHome, "keys", "import", keyFile).ExitCode);
        var target = Path.Combine(Cli.Root, "restored");
        var restore = Cli.Run("--home", newHome, "restore", "--from", holder, "--addr", address, "--to", target, "--json");
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(1, JsonDocument.Parse(restore.Out).RootElement.GetProperty("files").GetInt32());
        Assert.Contains("thesis.pdf", restore.Err, StringComparison.Ordinal);
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(target, "documents", "thesis.pdf")));
        using var peers = JsonDocument.Parse(Cli.Run("--home", newHome, "peers", "list", "--json").Out);
        Assert.Contains(peers.RootElement.EnumerateArray(), p => p.GetProperty("peerId").GetString() == holder && p.GetProperty("state").GetString() == "trusted");
    }

    [Fact]
    public void Offers_are_made_listed_and_revoked_from_the_command_line()
    {
        Assert.Equal(0, Cli.Home_("init").ExitCode);
        using var friend = NodeIdentity.Generate();
        Assert.Equal(1, Cli.Home_("backup", "offer", friend.PeerId.Text, "--quota", "10g").ExitCode);
        Assert.Equal(0, Cli.Home_("peers", "add", friend.PeerId.Text, "--trust", "--name", "friend").ExitCode);
        Assert.Equal(2, Cli.Home_("backup", "offer", friend.PeerId.Text, "--quota", "lots").ExitCode);
        Assert.Equal(0, Cli.Home_("backup", "offer", friend.PeerId.Text, "--quota", "10g").ExitCode);
        using (var offers = JsonDocument.Parse(Cli.Home_("backup", "offers", "--json").Out))
        {
            var offer = Assert.Single(offers.RootElement.EnumerateArray().ToList());
            Assert.Equal(10L << 30, offer.GetProperty("quota").GetInt64());
            Assert.Equal(0, offer.GetProperty("used").GetInt64());
        }
        Assert.Equal(0, Cli.Home_("backup", "revoke", friend.PeerId.Text).ExitCode);
        Assert.Equal(1, Cli.Home_("backup", "revoke", friend.PeerId.Text).ExitCode);
        Assert.Contains("no offers", Cli.Home_("backup", "offers").Out, StringComparison.Ordinal);
        using var log = JsonDocument.Parse(Cli.Home_("log", "--json").Out);
        var events = log.RootElement.EnumerateArray().Select(e => e.GetProperty("event").GetString()).ToList();
        Assert.Contains("backup.offer", events);
        Assert.Contains("backup.revoke", events);
    }

    [Fact]
    public void A_quota_in_tebibytes_is_taken_and_one_too_large_for_a_64_bit_count_is_refused()
    {
        Assert.Equal(0, Cli.Home_("init").ExitCode);
        using var friend = NodeIdentity.Generate();
        Assert.Equal(0, Cli.Home_("peers", "add", friend.PeerId.Text, "--trust").ExitCode);
        // 2^63 bytes is 8,388,608 TiB: one more does not fit and must be refused, not wrapped round to a small quota.
        var tooLarge = Cli.Home_("backup", "offer", friend.PeerId.Text, "--quota", "8388608t");
        Assert.Equal(2, tooLarge.ExitCode);
        Assert.Contains("not a size", tooLarge.Err, StringComparison.Ordinal);
        Assert.Equal(0, Cli.Home_("backup", "offer", friend.PeerId.Text, "--quota", "2TiB").ExitCode);
        using var offers = JsonDocument.Parse(Cli.Home_("backup", "offers", "--json").Out);
        Assert.Equal(2L << 40, Assert.Single(offers.RootElement.EnumerateArray().ToList()).GetProperty("quota").GetInt64());
    }

    [Fact]
    public async Task With_a_running_node_add_wait_and_check_go_through_it()
    {
        var (owner, holder, address) = await OwnerWithHolderAsync();
        var folder = Path.Combine(Cli.Root, "music");
        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "song.flac"), RandomNumberGenerator.GetBytes(300_000));

        var db = await StartOwnerNodeAsync();
        var add = Cli.Home_("backup", "add", folder, "--to", holder, "--wait");
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains("1 of 1 holder(s) have everything", add.Out, StringComparison.Ordinal);
        var check = Cli.Home_("backup", "check", "--json");
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.True(JsonDocument.Parse(check.Out).RootElement[0].GetProperty("ok").GetBoolean());
        Assert.NotNull(db.Backup.GetHolder(Holder!.Identity.PeerId).LastProof);
    }
}
