using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Tests.Backup;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>Issue 16, item 6: a one-off command's host (<c>get</c>, <c>search</c>) connects its peers itself before it is handed over.</summary>
public sealed class OneOffHostTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-oneoff-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task A_host_asked_to_connect_its_peers_first_is_handed_over_with_their_sessions_ready_and_otherwise_dials_nobody()
    {
        using var identity = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(_home);
        await using var peer = await TrustedPeerAsync(identity, db);

        // Without the option nothing is dialled: a host for the demo's peers or a test connects on its own.
        await using (var quiet = await MeshHost.StartAsync(identity, db, Options(connectFirst: false), CancellationToken.None))
        {
            await Task.Delay(300);
            Assert.Null(quiet.Node.GetSession(peer.PeerId));
            Assert.Empty(quiet.Transfer.OpenSessions());
        }

        // With it, the trusted peer's transfer session is ready the moment the host is handed over.
        await using var host = await MeshHost.StartAsync(identity, db, Options(connectFirst: true), CancellationToken.None);
        Assert.NotNull(host.Node.GetSession(peer.PeerId));
        Assert.Contains(host.Transfer.OpenSessions(), s => s.PeerId == peer.PeerId);
    }

    [Fact]
    public async Task After_the_handover_the_connector_keeps_dialling_trusted_peers()
    {
        await using var peer = await BackupNode.StartAsync();
        using var identity = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(_home);
        peer.Db.Trust.AddPeer(identity.PeerId, "one-off", trusted: true);
        await using var host = await MeshHost.StartAsync(identity, db, Options(connectFirst: true), CancellationToken.None);
        Assert.Empty(host.Transfer.OpenSessions());

        // A peer trusted (with its address) after the start is dialled by the connector the host started.
        db.Trust.AddPeer(peer.PeerId, "late", [peer.Address], trusted: true);
        await Wait.UntilAsync(() => host.Node.GetSession(peer.PeerId) is not null, TimeSpan.FromSeconds(30), "the connector to dial the peer trusted after the start");
    }

    [Fact]
    public async Task Stopping_a_one_off_host_ends_its_periodic_loops_without_a_cancellation_exception()
    {
        using var identity = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(_home);
        await using var peer = await TrustedPeerAsync(identity, db);
        var host = await MeshHost.StartAsync(identity, db, Options(connectFirst: true), CancellationToken.None);
        Assert.NotEmpty(host.Transfer.OpenSessions());

        // A tick wait cancelled through its token throws an exception whose stack trace the runtime resolves to files and
        // lines (tens of milliseconds at the end of a command); the loops are stopped by disposing their timers instead.
        var loops = new[] { "PeerConnector.LoopAsync", "MeshNode.PollLoopAsync", "TransferService.AccessLoopAsync", "RelayClient.LoopAsync" };
        var thrown = new System.Collections.Concurrent.ConcurrentBag<string>();
        void OnException(object? sender, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs e)
        {
            if (e.Exception is OperationCanceledException)
            {
                var stack = new System.Diagnostics.StackTrace(false).ToString();
                if (stack.Contains("PeriodicTimer", StringComparison.Ordinal) && loops.FirstOrDefault(l => stack.Contains(l, StringComparison.Ordinal)) is { } loop)
                {
                    thrown.Add(loop);
                }
            }
        }
        AppDomain.CurrentDomain.FirstChanceException += OnException;
        try
        {
            await host.DisposeAsync();
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= OnException;
        }
        Assert.Empty(thrown);
    }

    /// <summary>A peer that trusts <paramref name="identity"/>, trusted in <paramref name="db"/> with its address.</summary>
    private static async Task<BackupNode> TrustedPeerAsync(NodeIdentity identity, SecureMeshDatabase db)
    {
        var peer = await BackupNode.StartAsync();
        db.Trust.AddPeer(peer.PeerId, "peer", [peer.Address], trusted: true);
        peer.Db.Trust.AddPeer(identity.PeerId, "one-off", trusted: true);
        return peer;
    }

    private MeshHostOptions Options(bool connectFirst) => new()
    {
        Home = _home,
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        ConnectPeersFirst = connectFirst,
        PeerDialTimeout = TimeSpan.FromSeconds(20),
        PeerSessionTimeout = TimeSpan.FromSeconds(20),
    };
}
