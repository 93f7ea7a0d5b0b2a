using System.Net;

namespace SecureMesh.Storage.Tests;

public sealed class ConcurrencyTests
{
    [Fact]
    public async Task Two_handles_appending_at_once_keep_one_unbroken_chain()
    {
        using var t = new TestDatabase();
        using var other = SecureMeshDatabase.Open(t.Directory, t.Time);
        var a = Task.Run(() =>
        {
            for (var i = 0; i < 40; i++)
            {
                t.Db.Audit.Append("test.a", "a");
            }
        });
        var b = Task.Run(() =>
        {
            for (var i = 0; i < 40; i++)
            {
                other.Trust.AddPeer(TestDatabase.NewPeer());
            }
        });
        await Task.WhenAll(a, b);
        Assert.Equal(new AuditVerification(true, 80, null, null) { HeadSeq = 80, HeadHash = t.Db.Audit.List()[^1].Hash }, t.Db.Audit.Verify());
        Assert.Equal(40, t.Trust.ListPeers().Count);
    }

    [Fact]
    public async Task One_handle_serves_readers_and_writers_from_many_threads()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, trusted: true);
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                var decision = t.Trust.Authorize(peer, IPAddress.Parse("192.0.2.1"));
                Assert.True(decision is AuthorizationDecision.Trusted or AuthorizationDecision.BlockedAddress);
            }
        })).ToList();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 20; i++)
            {
                t.Trust.BlockAddress($"192.0.{i}.0/24");
            }
        });
        await Task.WhenAll([.. readers, writer]);
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("192.0.2.1")));
        Assert.True(t.Db.Audit.Verify().Ok);
    }
}
