using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>The in-memory audience snapshot on its own: nested shares, path boundaries, trust states, staleness.</summary>
public sealed class ShareAuthorizerTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-authz-").FullName;
    private readonly SecureMeshDatabase _db;

    public ShareAuthorizerTests() => _db = SecureMeshDatabase.Open(_home);

    private static string Id(byte seed) => ContentId.FromHash(Enumerable.Repeat(seed, 32).ToArray()).Text;

    private void File(string path, string contentId) =>
        _db.Catalog.Upsert(new CatalogEntry(path, Path.GetDirectoryName(path)!, Path.GetFileName(path), 1, 0, contentId, 16384, DateTimeOffset.UnixEpoch, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty));

    private static PeerId NewPeer()
    {
        using var identity = NodeIdentity.Generate();
        return identity.PeerId;
    }

    [Fact]
    public void Nested_shares_count_path_components_not_string_prefixes_and_only_trusted_members_see()
    {
        var bob = NewPeer();
        var carol = NewPeer();
        var dave = NewPeer();
        var erin = NewPeer();
        _db.Trust.AddPeer(bob, trusted: true);
        _db.Trust.AddPeer(carol, trusted: true);
        _db.Trust.AddPeer(dave);
        _db.Trust.AddPeer(erin, trusted: true);
        _db.Groups.Create("family");
        _db.Groups.Create("work");
        _db.Groups.AddMembers("family", [bob, dave]);
        _db.Groups.AddMembers("work", [carol]);
        _db.Catalog.AddShare("/data");
        _db.Catalog.AddShare("/data/family");
        _db.Catalog.AddShare("/srv/one.bin");
        _db.Groups.SetAudience("/data", ShareAudience.Parse("work"));
        _db.Groups.SetAudience("/data/family", ShareAudience.Parse("family"));
        _db.Groups.SetAudience("/srv/one.bin", ShareAudience.Parse($"{dave.Text},{erin.Text}"));
        File("/data/family/a.jpg", Id(1));
        File("/data/w.txt", Id(2));
        File("/data2/x.bin", Id(3));
        File("/srv/one.bin", Id(4));
        File("/srv/one.bin.old", Id(5));
        var access = new ShareAuthorizer(_db);

        Assert.True(access.CanSee(bob, Id(1)));
        Assert.False(access.CanSee(bob, Id(2)));
        // Carol sees the family photo too: it also lies under /data, which is shared with work.
        Assert.True(access.CanSee(carol, Id(1)));
        Assert.True(access.CanSee(carol, Id(2)));
        // /data covers /data/…, not /data2/…, and /srv/one.bin is one file, not a prefix.
        Assert.False(access.CanSee(carol, Id(3)));
        Assert.False(access.CanSeePath(carol, "/data2/x.bin"));
        Assert.True(access.CanSee(erin, Id(4)));
        Assert.False(access.CanSee(erin, Id(5)));
        // Dave is a family member and named on /srv/one.bin, but only pending: nothing.
        Assert.False(access.CanSee(dave, Id(1)));
        Assert.False(access.CanSee(dave, Id(4)));
        Assert.False(access.CanSee(NewPeer(), Id(1)));

        // Trusting Dave applies to the very next question, without waiting for a poll.
        _db.Trust.Trust(dave);
        Assert.True(access.CanSee(dave, Id(1)));
        Assert.True(access.CanSee(dave, Id(4)));
        // Revoking is picked up by the next refresh (the transfer engine polls it).
        _db.Groups.RemoveMembers("family", [dave]);
        Assert.True(access.Refresh());
        Assert.False(access.CanSee(dave, Id(1)));
        Assert.False(access.Refresh());
    }

    [Fact]
    public void A_share_of_the_root_folder_covers_everything_and_removing_a_share_hides_its_files()
    {
        var bob = NewPeer();
        _db.Trust.AddPeer(bob, trusted: true);
        _db.Catalog.AddShare("/");
        File("/deep/down/file.bin", Id(7));
        var access = new ShareAuthorizer(_db);
        Assert.True(access.CanSee(bob, Id(7)));
        _db.Catalog.RemoveShare("/");
        Assert.True(access.Refresh());
        Assert.False(access.CanSee(bob, Id(7)));
    }

    [Fact]
    public async Task A_peer_trusted_a_moment_ago_is_not_refused_while_the_poll_is_rebuilding()
    {
        // The transfer engine's poll rebuilds the snapshot every 250 ms; a request that found the gate held skipped its own
        // check and was refused with the snapshot from before the change (AbuseTests' trusted friend got an empty search
        // so under load). Here a thread refreshes without pause, as a slow poll would, while peers are trusted one by one.
        _db.Catalog.AddShare("/data");
        File("/data/a.bin", Id(9));
        // Enough trusted peers that each rebuild takes a while, as on a node with a large trust store.
        for (var i = 0; i < 500; i++)
        {
            _db.Trust.AddPeer(NewPeer(), trusted: true);
        }
        var access = new ShareAuthorizer(_db);
        using var stop = new CancellationTokenSource();
        var poll = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                access.Refresh();
            }
        });
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var peer = NewPeer();
                _db.Trust.AddPeer(peer, trusted: true);
                Assert.True(access.CanSeePath(peer, "/data/a.bin"), $"peer {i}, trusted just before, was refused a path");
                var other = NewPeer();
                _db.Trust.AddPeer(other, trusted: true);
                Assert.True(access.CanSee(other, Id(9)), $"peer {i}, trusted just before, was refused the content");
                // As a catalog search asks: inside the database's lock, which the poll's rebuild needs too. The check
                // must neither refuse nor wait for the poll (that wait deadlocked).
                var third = NewPeer();
                _db.Trust.AddPeer(third, trusted: true);
                var found = await Task.Run(() => _db.Catalog.SearchWhere("a.bin", 10, e => access.CanSeePath(third, e.Path))).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(found.Count == 1, $"peer {i}, trusted just before, found nothing in a search");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await poll.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    public void Dispose()
    {
        _db.Dispose();
        Directory.Delete(_home, recursive: true);
    }
}
