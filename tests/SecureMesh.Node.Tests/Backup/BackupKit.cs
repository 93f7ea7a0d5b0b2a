using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Backup;

/// <summary>A real node (the whole host: transfer and backup) on 127.0.0.1 with its own data directory.</summary>
internal sealed class BackupNode : IAsyncDisposable
{
    private bool _disposed;

    private BackupNode(string home, NodeIdentity identity, SecureMeshDatabase db, MeshHost host)
    {
        Home = home;
        Identity = identity;
        Db = db;
        Host = host;
    }

    public string Home { get; }

    public NodeIdentity Identity { get; }

    public SecureMeshDatabase Db { get; }

    public MeshHost Host { get; }

    public PeerId PeerId => Identity.PeerId;

    public string Address => $"127.0.0.1:{Host.Node.LocalEndPoint.Port}";

    public static async Task<BackupNode> StartAsync(NodeIdentity? identity = null, string? home = null)
    {
        home ??= Directory.CreateTempSubdirectory("securemesh-backup-").FullName;
        identity ??= NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home);
        var host = await MeshHost.StartAsync(identity, db, new MeshHostOptions { Home = home, Listen = new IPEndPoint(IPAddress.Loopback, 0) }, CancellationToken.None);
        return new BackupNode(home, identity, db, host);
    }

    /// <summary>This node trusts <paramref name="other"/> (with its address, so it can dial it).</summary>
    public void Trust(BackupNode other, string? name = null) => Db.Trust.AddPeer(other.PeerId, name, [other.Address], trusted: true);

    /// <summary>Stops the node; the data directory stays unless <paramref name="deleteHome"/>.</summary>
    public async Task StopAsync(bool deleteHome)
    {
        if (!_disposed)
        {
            _disposed = true;
            await Host.DisposeAsync();
            Db.Dispose();
            Identity.Dispose();
        }
        if (deleteHome && Directory.Exists(Home))
        {
            Directory.Delete(Home, recursive: true);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(deleteHome: true);
}
