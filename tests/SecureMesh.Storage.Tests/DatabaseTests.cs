using System.Globalization;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;

namespace SecureMesh.Storage.Tests;

public sealed class DatabaseTests
{
    [Fact]
    public void Open_creates_the_file_with_wal_foreign_keys_and_latest_schema()
    {
        using var t = new TestDatabase();
        Assert.True(File.Exists(t.FilePath));
        Assert.Equal(SecureMeshDatabase.SupportedSchemaVersion, t.Db.SchemaVersion());
        Assert.Equal(Migrations.LatestVersion, SecureMeshDatabase.SupportedSchemaVersion);
        Assert.Equal("ok", t.Db.IntegrityCheck());
        using var raw = t.Raw();
        Assert.Equal("wal", Pragma(raw, "journal_mode"));
        foreach (var table in new[] { "peers", "peer_addresses", "blocked_addresses", "blocked_content", "audit_log", "config",
                     "shares", "catalog", "downloads", "download_chunks", "quarantine" })
        {
            Assert.Equal(0, t.Count(table));
        }
        Assert.Equal(1L, t.Db.Read(c => { using var cmd = c.CreateCommand(); cmd.CommandText = "PRAGMA foreign_keys"; return (long)cmd.ExecuteScalar()!; }));
        Assert.Equal(2L, t.Db.Read(c => { using var cmd = c.CreateCommand(); cmd.CommandText = "PRAGMA synchronous"; return (long)cmd.ExecuteScalar()!; }));
    }

    [Fact]
    public void Closing_without_checkpoint_leaves_every_commit_in_the_wal_and_the_next_open_reads_it()
    {
        using var t = new TestDatabase();
        t.Reopen(); // a normal close: the schema is checkpointed into the main file
        t.Db.Config.Set("probe", "committed");
        t.Db.CloseWithoutCheckpoint();
        var wal = t.FilePath + "-wal";
        Assert.True(File.Exists(wal) && new FileInfo(wal).Length > 0, "the WAL was checkpointed and removed at close");
        // The main file alone does not hold the commit: it lives only in the WAL (fsynced there at commit, synchronous=FULL).
        var mainOnly = Path.Combine(t.Directory, "main-only.db");
        File.Copy(t.FilePath, mainOnly);
        using (var raw = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = mainOnly, Pooling = false }.ToString()))
        {
            raw.Open();
            using var cmd = raw.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM config WHERE key = 'probe'";
            Assert.Equal(0L, (long)cmd.ExecuteScalar()!);
        }
        t.Reopen();
        Assert.Equal("committed", t.Db.Config.Get("probe"));
        Assert.Equal("ok", t.Db.IntegrityCheck());
        // A normal close checkpoints: the WAL is folded into the main file and removed.
        t.Db.Dispose();
        Assert.False(File.Exists(wal));
        t.Reopen();
        Assert.Equal("committed", t.Db.Config.Get("probe"));
    }

    [Fact]
    public void File_is_owner_only_on_unix()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        using var t = new TestDatabase();
        t.Db.Config.Set("k", "v");
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(ownerOnly, File.GetUnixFileMode(t.FilePath));
        Assert.Equal(ownerOnly, File.GetUnixFileMode(t.FilePath + "-wal"));
        Assert.Equal(ownerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(t.Directory));
    }

    [Fact]
    public void An_existing_data_directory_open_to_others_is_made_owner_only_and_an_unusable_one_is_a_storage_error()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var dir = Directory.CreateTempSubdirectory("securemesh-datadir-").FullName;
        try
        {
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            using (SecureMeshDatabase.Open(dir))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            }

            // A regular file where the data directory should be.
            var file = Path.Combine(dir, "not-a-directory");
            File.WriteAllText(file, "x");
            var e = Assert.Throws<SecureMeshException>(() => SecureMeshDatabase.Open(Path.Combine(file, "home")));
            Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
            Assert.Contains("data directory", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Migrations_step_from_version_one_to_two_and_keep_data()
    {
        using var t = new TestDatabase();
        t.Db.Dispose();
        File.Delete(t.FilePath);
        using (var v1 = SecureMeshDatabase.OpenFile(t.FilePath, t.Time, Migrations.Steps[..1]))
        {
            Assert.Equal(1, v1.SchemaVersion());
            v1.Config.Set("listen", "0.0.0.0:4001");
        }
        Assert.Throws<SqliteException>(() => t.Count("quarantine"));
        t.Reopen();
        Assert.Equal(SecureMeshDatabase.SupportedSchemaVersion, t.Db.SchemaVersion());
        Assert.Equal("0.0.0.0:4001", t.Db.Config.Get("listen"));
        Assert.Equal(0, t.Count("quarantine"));
    }

    [Fact]
    public void A_failing_migration_rolls_back_completely()
    {
        using var t = new TestDatabase();
        t.Db.Dispose();
        File.Delete(t.FilePath);
        string[] broken = [Migrations.Steps[0], "CREATE TABLE extra (x INTEGER); THIS IS NOT SQL;"];
        var e = Assert.Throws<SecureMeshException>(() => SecureMeshDatabase.OpenFile(t.FilePath, t.Time, broken));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        using var raw = t.Raw();
        Assert.Equal("0", Pragma(raw, "user_version"));
        Assert.Equal("0", Scalar(raw, "SELECT count(*) FROM sqlite_master"));
    }

    [Fact]
    public void Newer_schema_version_is_refused_and_left_alone()
    {
        using var t = new TestDatabase();
        t.Db.Dispose();
        var supported = SecureMeshDatabase.SupportedSchemaVersion;
        var newer = supported + 3;
        t.Sql($"PRAGMA user_version = {newer}");
        var before = File.ReadAllBytes(t.FilePath);
        var e = Assert.Throws<SecureMeshException>(() => SecureMeshDatabase.Open(t.Directory, t.Time));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        Assert.Contains($"database schema version {newer} is newer than this SecureMesh supports ({supported})", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(t.FilePath));
        t.Sql($"PRAGMA user_version = {supported}");
        t.Reopen();
    }

    [Theory]
    [InlineData("this is not a database at all, just some text that is long enough")]
    [InlineData("x")]
    public void Garbage_file_is_refused_naming_the_path_and_left_byte_identical(string content)
    {
        var dir = Path.Combine(Path.GetTempPath(), "securemesh-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, SecureMeshDatabase.FileName);
            File.WriteAllText(path, content);
            var before = File.ReadAllBytes(path);
            var e = Assert.Throws<SecureMeshException>(() => SecureMeshDatabase.Open(dir));
            Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Equal([SecureMeshDatabase.FileName], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Corrupt_sqlite_file_with_valid_magic_is_refused_and_left_byte_identical()
    {
        var dir = Path.Combine(Path.GetTempPath(), "securemesh-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, SecureMeshDatabase.FileName);
            var bytes = new byte[8192];
            "SQLite format 3\0"u8.CopyTo(bytes);
            new Random(1).NextBytes(bytes.AsSpan(16));
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<SecureMeshException>(() => SecureMeshDatabase.Open(dir));
            Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Equal(bytes, File.ReadAllBytes(path));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Change_stamp_moves_for_own_and_other_process_writes()
    {
        using var t = new TestDatabase();
        var s0 = t.Db.ChangeStamp();
        Assert.Equal(s0, t.Db.ChangeStamp());
        t.Db.Config.Set("a", "b");
        var s1 = t.Db.ChangeStamp();
        Assert.NotEqual(s0, s1);
        using var other = SecureMeshDatabase.Open(t.Directory, t.Time);
        other.Trust.BlockAddress("10.0.0.0/8");
        Assert.NotEqual(s1, t.Db.ChangeStamp());
        Assert.True(t.Trust.IsAddressBlocked(System.Net.IPAddress.Parse("10.9.9.9")));
    }

    [Fact]
    public void Address_block_from_another_process_reaches_a_running_node_within_a_second()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, trusted: true);
        var address = System.Net.IPAddress.Parse("198.51.100.7");
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, address));
        using (var cli = SecureMeshDatabase.Open(t.Directory, t.Time))
        {
            cli.Trust.BlockAddress("198.51.100.0/24", "cli");
        }
        t.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, address));
        using (var cli = SecureMeshDatabase.Open(t.Directory, t.Time))
        {
            cli.Trust.Block(peer, "cli");
        }
        // Peer state is read from the file on every call, so a peer block is seen at once.
        Assert.Equal(AuthorizationDecision.BlockedPeer, t.Trust.Authorize(peer, System.Net.IPAddress.Parse("192.0.2.1")));
    }

    [Fact]
    public void Two_handles_share_the_file_and_see_each_others_writes()
    {
        using var t = new TestDatabase();
        using var cli = SecureMeshDatabase.Open(t.Directory, t.Time);
        var peer = TestDatabase.NewPeer();
        cli.Trust.AddPeer(peer, "alice", trusted: true);
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, System.Net.IPAddress.Loopback));
        t.Db.Audit.Append("handshake.rejected", "x");
        Assert.True(cli.Audit.Verify().Ok);
        Assert.Equal(2, cli.Audit.Count());
    }

    [Fact]
    public void Disposed_database_throws_object_disposed()
    {
        var t = new TestDatabase();
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Db.ChangeStamp());
    }

    private static string Pragma(SqliteConnection connection, string name) => Scalar(connection, $"PRAGMA {name}");

    private static string Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture)!;
    }
}
