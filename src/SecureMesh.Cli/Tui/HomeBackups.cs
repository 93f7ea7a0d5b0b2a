using SecureMesh.Cli.Commands;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Backup;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tui;

/// <summary>
/// The Backups view's part of <see cref="INodeClient"/>, on the data directory's database as the <c>backup</c> commands
/// work: a running node watches the same records, so it uploads a new path and runs a requested proof round within seconds.
/// </summary>
internal sealed class HomeBackups(string home)
{
    public Task<BackupsView> GetAsync(CancellationToken cancellationToken) => Use(db =>
    {
        var names = db.Trust.ListPeers().Where(p => p.Name is not null).ToDictionary(p => p.PeerId.Text, p => p.Name!, StringComparer.Ordinal);
        var offers = db.Backup.ListOffers().Select(o => new BackupOfferView(o.PeerId.Text, names.GetValueOrDefault(o.PeerId.Text), o.Quota, o.Used)).ToList();
        return new BackupsView(BackupStatusReport.Compute(db), offers, names);
    }, cancellationToken);

    public Task AddAsync(string path, IReadOnlyList<string> holders, int? copies, string? keep, CancellationToken cancellationToken) =>
        Use(db => BackupCommands.AddSet(db, path, [.. holders.Select(CliArgs.Peer)], copies, keep), cancellationToken);

    public Task RemoveAsync(string path, CancellationToken cancellationToken) => Use(db => BackupCommands.RemoveSet(db, path), cancellationToken);

    public Task CheckAsync(CancellationToken cancellationToken) => Use(BackupCommands.RequestCheck, cancellationToken);

    private Task<T> Use<T>(Func<SecureMeshDatabase, T> body, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        IdentityStore.EnsureDataDirectory(home);
        using var db = SecureMeshDatabase.Open(home);
        return Task.FromResult(body(db));
    }
}
