using System.Security.Cryptography;
using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Node.Backup;

namespace SecureMesh.Node.Tests.Backup;

/// <summary>A trusted peer with an offer that sends the holder what it should not.</summary>
public sealed class BackupHolderHostileTests : IAsyncLifetime
{
    private BackupNode _holder = null!;
    private BackupNode _owner = null!;
    private BackupNode _other = null!;

    public async Task InitializeAsync()
    {
        _holder = await BackupNode.StartAsync();
        _owner = await BackupNode.StartAsync();
        _other = await BackupNode.StartAsync();
        foreach (var peer in new[] { _owner, _other })
        {
            peer.Trust(_holder, "holder");
            _holder.Trust(peer);
            _holder.Db.Backup.Offer(peer.PeerId, 8L << 20);
        }
    }

    public async Task DisposeAsync()
    {
        await _other.DisposeAsync();
        await _owner.DisposeAsync();
        await _holder.DisposeAsync();
    }

    private async Task<BackupConnection> OpenAsync(BackupNode from) =>
        await BackupConnection.OpenAsync(await from.Host.Node.ConnectAsync(_holder.PeerId, _holder.Address, CancellationToken.None), CancellationToken.None);

    [Fact]
    public async Task A_blob_under_a_false_id_is_refused_and_nothing_is_stored()
    {
        await using var connection = await OpenAsync(_owner);
        var blob = RandomNumberGenerator.GetBytes(5000);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => connection.PutAsync(BlobId.Of("something else"u8), blob, CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Equal(0, _holder.Db.Backup.Used(_owner.PeerId));
    }

    [Fact]
    public async Task One_owner_cannot_read_prove_or_delete_another_owners_blob()
    {
        var blob = RandomNumberGenerator.GetBytes(5000);
        var id = BlobId.Of(blob);
        await using (var owner = await OpenAsync(_owner))
        {
            await owner.PutAsync(id, blob, CancellationToken.None);
            await owner.PutRootAsync("root"u8, CancellationToken.None);
        }
        await using var other = await OpenAsync(_other);
        Assert.Equal(SecureMeshErrorKind.NotFound, (await Assert.ThrowsAsync<SecureMeshException>(() => other.GetAsync(id, CancellationToken.None))).Kind);
        var challenge = ProofChallenge.Create(blob);
        Assert.Equal(SecureMeshErrorKind.NotFound, (await Assert.ThrowsAsync<SecureMeshException>(() => other.ProveAsync(id, challenge, CancellationToken.None))).Kind);
        Assert.Null(await other.GetRootAsync(CancellationToken.None));
        Assert.Empty(await other.ListAsync(CancellationToken.None));
        await other.DeleteAsync(id, CancellationToken.None);
        await using var again = await OpenAsync(_owner);
        Assert.Equal(blob, await again.GetAsync(id, CancellationToken.None));
        // A proof over a range past the blob's end is answered "not found", never with a hash of something else.
        var past = new ProofChallenge(challenge.Nonce, blob.Length - 10, 100, challenge.Expected);
        Assert.Equal(SecureMeshErrorKind.NotFound, (await Assert.ThrowsAsync<SecureMeshException>(() => again.ProveAsync(id, past, CancellationToken.None))).Kind);
        Assert.True(challenge.Check(await again.ProveAsync(id, challenge, CancellationToken.None)));
    }

    [Fact]
    public async Task A_malformed_request_gets_bad_request_and_the_stream_ends()
    {
        await using var connection = await OpenAsync(_owner);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => connection.CallAsync([0x7f, 1, 2, 3], CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("unknown request", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => connection.UsageAsync(CancellationToken.None));
        // The holder carries on for a new stream.
        await using var fresh = await OpenAsync(_owner);
        Assert.Equal(8L << 20, (await fresh.UsageAsync(CancellationToken.None)).Quota);
    }

    [Fact]
    public async Task An_announced_length_over_the_cap_resets_the_stream_before_anything_is_allocated()
    {
        var session = await _owner.Host.Node.ConnectAsync(_holder.PeerId, _holder.Address, CancellationToken.None);
        await using var stream = await session.OpenStreamAsync(BackupWire.ProtocolId, CancellationToken.None);
        // A varint announcing 1 GiB, then a few bytes.
        await stream.WriteAsync(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x04, 1, 2, 3 });
        await stream.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[64];
        var ended = false;
        try
        {
            ended = await stream.ReadAsync(buffer, timeout.Token) == 0;
        }
        catch (Exception ex) when (ex is SecureMeshException or IOException)
        {
            ended = true;
        }
        Assert.True(ended, "the holder kept a stream that announced a 1 GiB message");
        Assert.Equal(0, _holder.Db.Backup.Used(_owner.PeerId));
    }
}
