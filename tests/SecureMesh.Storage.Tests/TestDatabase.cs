using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage.Tests;

/// <summary>A fresh data directory with an open database, removed afterwards.</summary>
internal sealed class TestDatabase : IDisposable
{
    public TestDatabase()
    {
        Directory = Path.Combine(Path.GetTempPath(), "securemesh-storage-tests", Guid.NewGuid().ToString("N"));
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        Db = SecureMeshDatabase.Open(Directory, Time);
    }

    public string Directory { get; }

    public FakeTimeProvider Time { get; }

    public SecureMeshDatabase Db { get; private set; }

    public string FilePath => Path.Combine(Directory, SecureMeshDatabase.FileName);

    public TrustStore Trust => Db.Trust;

    public void Reopen()
    {
        Db.Dispose();
        Db = SecureMeshDatabase.Open(Directory, Time);
    }

    /// <summary>A second, raw connection to the same file: for counting rows and for tampering as an attacker would.</summary>
    public SqliteConnection Raw()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = FilePath, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public long Count(string table)
    {
        using var connection = Raw();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {table}";
        return (long)command.ExecuteScalar()!;
    }

    public void Sql(string sql)
    {
        using var connection = Raw();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Row counts of every table that a trust-store call may touch.</summary>
    public string Snapshot() => string.Join(",",
        new[] { "peers", "peer_addresses", "blocked_addresses", "blocked_content", "audit_log", "config" }.Select(t => $"{t}={Count(t)}"))
        + "|" + string.Join(";", Trust.ListPeers().Select(p => $"{p.PeerId.Text}:{p.State}:{p.Name}:{p.BlockReason}:{p.Addresses.Count}"));

    public static PeerId NewPeer()
    {
        using var identity = NodeIdentity.Generate();
        return identity.PeerId;
    }

    public void Dispose()
    {
        Db.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
