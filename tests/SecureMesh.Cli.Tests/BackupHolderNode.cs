using System.Net;
using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// For backup tests: the CLI's home as the owner (discovery off) and a real holder node on 127.0.0.1 that trusts it and
/// offers 32 MiB, trusted back by the owner with its address under the name "bob".
/// </summary>
internal sealed class BackupHolderNode : IAsyncDisposable
{
    private BackupHolderNode(PeerId owner, NodeIdentity identity, SecureMeshDatabase db, MeshHost host)
    {
        Owner = owner;
        Identity = identity;
        Db = db;
        Host = host;
        Address = $"127.0.0.1:{host.Node.LocalEndPoint.Port}";
    }

    public PeerId Owner { get; }

    public NodeIdentity Identity { get; }

    public SecureMeshDatabase Db { get; }

    public MeshHost Host { get; }

    public string Address { get; }

    public string PeerId => Identity.PeerId.Text;

    public static async Task<BackupHolderNode> StartAsync(CliHarness cli)
    {
        Assert.Equal(0, cli.Home_("init").ExitCode);
        Assert.Equal(0, cli.Home_("config", "set", "discovery", "off").ExitCode);
        using var id = JsonDocument.Parse(cli.Home_("id", "--json").Out);
        var owner = Core.Identity.PeerId.Parse(id.RootElement.GetProperty("peerId").GetString());
        var home = Path.Combine(cli.Root, "holder");
        var identity = NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home);
        var host = await MeshHost.StartAsync(identity, db, new MeshHostOptions { Home = home, Listen = new IPEndPoint(IPAddress.Loopback, 0) }, CancellationToken.None);
        var node = new BackupHolderNode(owner, identity, db, host);
        db.Trust.AddPeer(owner, "owner", trusted: true);
        db.Backup.Offer(owner, 32L << 20);
        Assert.Equal(0, cli.Home_("peers", "add", node.PeerId, "--addr", node.Address, "--trust", "--name", "bob").ExitCode);
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        Db.Dispose();
        Identity.Dispose();
    }
}

/// <summary>A test class with the CLI's home as a backup owner and, once started, a <see cref="BackupHolderNode"/>; both are cleaned up after each test.</summary>
public abstract class BackupTestBase : IAsyncLifetime
{
    private protected CliHarness Cli { get; } = new();

    private (IDisposable Lock, NodeIdentity Identity, SecureMeshDatabase Db, MeshHost Host)? _owner;

    private protected BackupHolderNode? Holder { get; private set; }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_owner is { } owner)
        {
            await owner.Host.DisposeAsync();
            owner.Db.Dispose();
            owner.Identity.Dispose();
            owner.Lock.Dispose();
        }
        if (Holder is not null)
        {
            await Holder.DisposeAsync();
        }
        Cli.Dispose();
    }

    /// <summary>Runs the owner's node as `securemesh run` would (it holds the lock and serves); its database.</summary>
    private protected async Task<SecureMeshDatabase> StartOwnerNodeAsync()
    {
        var nodeLock = NodeLock.Acquire(Cli.Home);
        var identity = IdentityStore.Load(Cli.Home, () => null);
        var db = SecureMeshDatabase.Open(Cli.Home);
        var host = await MeshHost.StartAsync(identity, db, new MeshHostOptions { Home = Cli.Home, Listen = new IPEndPoint(IPAddress.Loopback, 0), Serve = true },
            CancellationToken.None);
        _owner = (nodeLock, identity, db, host);
        return db;
    }

    private protected async Task<BackupHolderNode> StartHolderAsync() => Holder = await BackupHolderNode.StartAsync(Cli);
}
