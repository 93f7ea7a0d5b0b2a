namespace SecureMesh.Storage.Tests;

/// <summary>
/// Text that reaches the database from users and peers (names, reasons, announced file names, search terms, settings,
/// audit details) is data, never SQL: it comes back byte for byte and no statement of its own ever runs.
/// </summary>
public sealed class SqlInjectionTests
{
    private static readonly string Cid = "b3:" + new string('c', 52);
    private static readonly string OtherCid = "b3:" + new string('d', 52);

    public static TheoryData<string> Payloads => new()
    {
        "x'); DROP TABLE peers;--",
        "Robert'); DROP TABLE audit_log; --",
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "x'; DELETE FROM config; UPDATE peers SET state='trusted'; --",
        "'||(SELECT group_concat(name) FROM sqlite_master)||'",
        "$name @p :q ?1",
        "%_\\ %' ESCAPE '",
        "*/ ATTACH DATABASE '/tmp/x.db' AS x; /*",
    };

    [Theory]
    [MemberData(nameof(Payloads))]
    public void Sql_in_names_reasons_settings_and_details_is_stored_verbatim_and_runs_nothing(string payload)
    {
        using var t = new TestDatabase();
        var schema = Schema(t);
        var friend = TestDatabase.NewPeer();
        t.Trust.AddPeer(friend, "friend", trusted: true);
        var peer = TestDatabase.NewPeer();

        t.Trust.AddPeer(peer, payload);
        Assert.Equal(payload, t.Trust.GetPeer(peer)!.Name);
        Assert.Equal(PeerState.Pending, t.Trust.GetPeer(peer)!.State);
        t.Trust.Rename(friend, payload);
        Assert.Equal(payload, t.Trust.GetPeer(friend)!.Name);
        Assert.Equal(PeerState.Trusted, t.Trust.GetPeer(friend)!.State);
        t.Trust.Block(peer, payload);
        Assert.Equal(payload, t.Trust.GetPeer(peer)!.BlockReason);

        t.Trust.BlockAddress("192.0.2.0/24", payload);
        t.Trust.BlockContent(Cid, payload);
        var blocklist = t.Trust.ListBlocklist();
        Assert.Equal(payload, Assert.Single(blocklist.Addresses).Reason);
        Assert.Equal(payload, Assert.Single(blocklist.Content).Reason);

        t.Db.Config.Set("note", payload);
        Assert.Equal(payload, t.Db.Config.Get("note"));

        var item = t.Db.Quarantine.Add(OtherCid, payload, "safe.bin", 1, peer, [peer], id => $"/q/{id}");
        Assert.Equal(payload, t.Db.Quarantine.Get(item.Id)!.AnnouncedName);
        t.Db.Quarantine.Hold(item.Id, payload, verified: false);
        Assert.Equal(payload, t.Db.Quarantine.Get(item.Id)!.Reason);

        t.Db.Audit.Append("test.sql", peer, payload);
        Assert.Equal(payload, t.Db.Audit.List().Last().Detail);

        // Reopened from the file: the text is still exactly what was given, the schema and every row are intact.
        t.Reopen();
        Assert.Equal(payload, t.Trust.GetPeer(peer)!.Name);
        Assert.Equal(payload, t.Trust.GetPeer(friend)!.Name);
        Assert.Equal(PeerState.Blocked, t.Trust.GetPeer(peer)!.State);
        Assert.Equal(PeerState.Trusted, t.Trust.GetPeer(friend)!.State);
        Assert.Equal(payload, t.Db.Config.Get("note"));
        Assert.Equal(schema, Schema(t));
        Assert.Equal(2, t.Count("peers"));
        Assert.Equal(1, t.Count("config"));
        Assert.True(t.Db.Audit.Verify().Ok);
        Assert.Equal("ok", Scalar(t, "PRAGMA integrity_check"));
    }

    [Theory]
    [MemberData(nameof(Payloads))]
    public void A_search_with_sql_in_it_matches_only_names_that_contain_it(string payload)
    {
        using var t = new TestDatabase();
        t.Db.Catalog.AddShare("/s");
        t.Db.Catalog.Upsert(Entry("/s/holiday.mkv", "holiday.mkv", Cid));
        t.Db.Catalog.Upsert(Entry("/s/x", payload, OtherCid));
        var schema = Schema(t);

        var hits = t.Db.Catalog.Search(payload, 100);
        Assert.Equal(OtherCid, Assert.Single(hits).ContentId);
        Assert.Equal(payload, hits[0].Name);
        Assert.DoesNotContain(t.Db.Catalog.Search(payload + " holiday", 100), h => h.ContentId == Cid);
        Assert.Equal(2, t.Db.Catalog.List().Count);
        Assert.Equal(schema, Schema(t));
    }

    [Fact]
    public void The_payloads_would_do_damage_if_they_were_pasted_into_sql()
    {
        // Guards the test itself: the first payload, concatenated into a statement as a careless store would, does drop the table.
        using var t = new TestDatabase();
        t.Trust.AddPeer(TestDatabase.NewPeer(), "someone");
        using var connection = t.Raw();
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO config (key, value) VALUES ('k', '{"x'); DROP TABLE peers;--"}";
        command.ExecuteNonQuery();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'peers'";
        Assert.Equal(0L, (long)command.ExecuteScalar()!);
    }

    private static CatalogEntry Entry(string path, string name, string cid) =>
        new(path, "/s", name, 10, 1, cid, 16384, DateTimeOffset.UnixEpoch, new byte[32], new byte[] { 1 });

    private static string Schema(TestDatabase t)
    {
        using var connection = t.Raw();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger', 'view') ORDER BY name";
        using var reader = command.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }
        Assert.Contains("peers", names);
        return string.Join(";", names);
    }

    private static string Scalar(TestDatabase t, string sql)
    {
        using var connection = t.Raw();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)!;
    }
}
