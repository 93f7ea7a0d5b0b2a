using System.Net;
using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests;

public sealed class GroupCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    [Fact]
    public void Groups_and_audiences_from_the_command_line_without_a_node()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        using var bob = NodeIdentity.Generate();
        using var carol = NodeIdentity.Generate();
        Assert.Equal(0, _cli.Home_("peers", "add", bob.PeerId.Text, "--trust", "--name", "bob").ExitCode);
        Assert.Equal(0, _cli.Home_("peers", "add", carol.PeerId.Text, "--name", "carol").ExitCode);

        Assert.Equal(0, _cli.Home_("groups", "create", "family").ExitCode);
        var add = _cli.Home_("groups", "add", "family", bob.PeerId.Text, carol.PeerId.Text, "--json");
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(2, JsonDocument.Parse(add.Out).RootElement.GetProperty("changed").GetInt32());
        Assert.Equal(0, _cli.Home_("groups", "create", "work").ExitCode);
        Assert.Equal(0, _cli.Home_("groups", "add", "work", bob.PeerId.Text).ExitCode);

        using (var list = JsonDocument.Parse(_cli.Home_("groups", "list", "--json").Out))
        {
            var groups = list.RootElement.EnumerateArray().ToList();
            Assert.Equal(["family", "work"], groups.Select(g => g.GetProperty("name").GetString()));
            var members = groups[0].GetProperty("members").EnumerateArray().ToList();
            Assert.Equal(2, members.Count);
            Assert.Contains(members, m => m.GetProperty("peerId").GetString() == carol.PeerId.Text && m.GetProperty("state").GetString() == "pending");
        }
        Assert.Contains("bob (trusted)", _cli.Home_("groups", "list").Out, StringComparison.Ordinal);

        var folder = Path.Combine(_cli.Root, "family");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "photo.jpg"), new byte[5000]);
        var share = _cli.Home_("share", "add", folder, "--with", "family");
        Assert.True(share.ExitCode == 0, share.ToString());
        var other = Path.Combine(_cli.Root, "public");
        Directory.CreateDirectory(other);
        Assert.Equal(0, _cli.Home_("share", "add", other).ExitCode);

        using (var list = JsonDocument.Parse(_cli.Home_("share", "list", "--json").Out))
        {
            Assert.Equal([folder, other], list.RootElement.GetProperty("shares").EnumerateArray().Select(s => s.GetString()));
            var audiences = list.RootElement.GetProperty("audiences").EnumerateArray().ToDictionary(a => a.GetProperty("path").GetString()!, a => a.GetProperty("audience").GetString());
            Assert.Equal("family", audiences[folder]);
            Assert.Equal("all", audiences[other]);
            Assert.Equal("family", list.RootElement.GetProperty("files")[0].GetProperty("audience").GetString());
        }
        Assert.Contains("(with family)", _cli.Home_("share", "list").Out, StringComparison.Ordinal);

        var set = _cli.Home_("share", "set", folder, "--with", $"work,{carol.PeerId.Text}", "--json");
        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Equal($"work,{carol.PeerId.Text}", JsonDocument.Parse(set.Out).RootElement.GetProperty("audience").GetString());

        // A group in use cannot go; once the share is given to all, it can.
        var inUse = _cli.Home_("groups", "delete", "work");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains(folder, inUse.Err, StringComparison.Ordinal);
        Assert.Equal(0, _cli.Home_("share", "set", folder, "--with", "all").ExitCode);
        Assert.Equal(0, _cli.Home_("groups", "remove", "family", carol.PeerId.Text).ExitCode);
        Assert.Equal(0, _cli.Home_("groups", "delete", "work").ExitCode);

        var log = _cli.Home_("log", "--json").Out;
        foreach (var e in new[] { "group.created", "group.member_added", "group.member_removed", "group.deleted", "share.audience" })
        {
            Assert.Contains($"\"{e}\"", log, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Bad_names_unknown_groups_and_peers_are_one_clear_line_and_share_nothing()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var folder = Path.Combine(_cli.Root, "secret");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "a.bin"), new byte[100]);

        foreach (var args in new[]
        {
            new[] { "groups", "create", "all" },
            ["groups", "create", "bad name"],
            ["groups", "add", "nope", NodeIdentityText()],
            ["groups", "add", "nope", "not-a-peer-id"],
            ["share", "add", folder, "--with", "famliy"],
            ["share", "add", folder, "--with", "all,family"],
            ["share", "set", folder, "--with", "all"],
        })
        {
            var r = _cli.Home_(args);
            Assert.True(r.ExitCode == 1, $"{string.Join(' ', args)}: {r}");
            Assert.Single(r.ErrLines);
        }
        // The mistyped audience shared nothing at all.
        using var list = JsonDocument.Parse(_cli.Home_("share", "list", "--json").Out);
        Assert.Empty(list.RootElement.GetProperty("shares").EnumerateArray());
        Assert.Empty(list.RootElement.GetProperty("files").EnumerateArray());
        Assert.Equal(2, _cli.Home_("share", "set", folder).ExitCode);
    }

    private static string NodeIdentityText()
    {
        using var identity = NodeIdentity.Generate();
        return identity.PeerId.Text;
    }

    [Fact]
    public async Task With_a_running_node_group_and_audience_changes_go_through_its_control_API_and_apply_at_once()
    {
        IdentityStore.EnsureDataDirectory(_cli.Home);
        using var nodeLock = NodeLock.Acquire(_cli.Home);
        using var identity = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(_cli.Home);
        await using var transfer = new TransferService(db, identity, _cli.Home, new TransferOptions { AccessPollInterval = TimeSpan.FromHours(1) });
        await using var node = MeshNode.Start(identity, db, new NodeOptions { Home = _cli.Home, Listen = new IPEndPoint(IPAddress.Loopback, 0), SessionHandler = transfer.HandleSessionAsync });
        await using var server = await ControlServer.StartAsync(node, db, new ControlServerOptions { Home = _cli.Home, Transfer = transfer }, CancellationToken.None);
        using var bob = NodeIdentity.Generate();
        db.Trust.AddPeer(bob.PeerId, "bob", null, trusted: true);
        var folder = Path.Combine(_cli.Root, "family");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "photo.jpg"), new byte[3000]);

        Assert.Equal(0, _cli.Home_("groups", "create", "family").ExitCode);
        var share = _cli.Home_("share", "add", folder, "--with", "family");
        Assert.True(share.ExitCode == 0, share.ToString());
        var contentId = db.Catalog.List().Single().ContentId;
        // The node polls only hourly here: whatever applies at once was applied by the API call itself.
        Assert.False(transfer.Access.CanSee(bob.PeerId, contentId));
        Assert.Equal(0, _cli.Home_("groups", "add", "family", bob.PeerId.Text).ExitCode);
        Assert.True(transfer.Access.CanSee(bob.PeerId, contentId));
        Assert.Equal(0, _cli.Home_("groups", "remove", "family", bob.PeerId.Text).ExitCode);
        Assert.False(transfer.Access.CanSee(bob.PeerId, contentId));
        Assert.Equal(0, _cli.Home_("share", "set", folder, "--with", bob.PeerId.Text).ExitCode);
        Assert.True(transfer.Access.CanSee(bob.PeerId, contentId));
        Assert.Equal(bob.PeerId.Text, db.Groups.GetAudience(folder).ToString());
        using var groups = JsonDocument.Parse(_cli.Home_("groups", "list", "--json").Out);
        Assert.Equal("family", groups.RootElement[0].GetProperty("name").GetString());
    }

    public void Dispose() => _cli.Dispose();
}
