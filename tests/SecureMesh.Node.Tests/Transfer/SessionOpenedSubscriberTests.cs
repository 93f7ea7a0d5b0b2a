namespace SecureMesh.Node.Tests.Transfer;

/// <summary>A <see cref="MeshNode.SessionOpened"/> subscriber runs on the accept loop: its failure must not stop the node accepting.</summary>
public sealed class SessionOpenedSubscriberTests
{
    [Fact]
    public async Task A_subscriber_that_throws_is_skipped_and_the_node_goes_on_accepting_sessions()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        await using var c = TransferNode.Start();
        a.Trust(b);
        a.Trust(c);
        b.Trust(a);
        c.Trust(a);
        var told = 0;
        a.Node.SessionOpened += _ => throw new InvalidOperationException("a subscriber's bug");
        a.Node.SessionOpened += _ => Interlocked.Increment(ref told);

        await b.Node.ConnectAsync(a.PeerId, $"127.0.0.1:{a.Node.LocalEndPoint.Port}", CancellationToken.None);
        await Wait.UntilAsync(() => a.Node.GetSession(b.PeerId) is not null, TimeSpan.FromSeconds(10), "b's session on a");

        // The accept loop survived the first subscriber's failure: a later peer still gets in, and later subscribers were told.
        await c.Node.ConnectAsync(a.PeerId, $"127.0.0.1:{a.Node.LocalEndPoint.Port}", CancellationToken.None);
        await Wait.UntilAsync(() => a.Node.GetSession(c.PeerId) is not null, TimeSpan.FromSeconds(10), "c's session on a");
        await Wait.UntilAsync(() => Volatile.Read(ref told) == 2, TimeSpan.FromSeconds(10), "the second subscriber told of both sessions");
    }
}
