using System.Security.Cryptography;
using System.Text;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Backup;

public class BackupCryptoTests
{
    private static byte[] Seed(byte fill) => Enumerable.Repeat(fill, 32).ToArray();

    [Fact]
    public void Keys_derive_with_hkdf_sha256_as_the_base_library_computes_it()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        foreach (var label in new[] { BackupKeys.ContentLabel, BackupKeys.CatalogLabel, BackupKeys.TrustLabel })
        {
            var ours = new byte[32];
            BackupKeys.DeriveBytes(seed, label, ours);
            var reference = HKDF.DeriveKey(HashAlgorithmName.SHA256, seed, 32, Encoding.ASCII.GetBytes(BackupKeys.Salt), Encoding.ASCII.GetBytes(label));
            Assert.Equal(reference, ours);
        }
        var a = new byte[32];
        var b = new byte[32];
        BackupKeys.DeriveBytes(seed, BackupKeys.ContentLabel, a);
        BackupKeys.DeriveBytes(seed, BackupKeys.CatalogLabel, b);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void The_same_identity_opens_what_it_sealed_after_a_reimport()
    {
        using var identity = NodeIdentity.Generate();
        var seed = new byte[32];
        identity.ExportSeed(seed);
        using var sealing = BackupKeys.Derive(identity);
        using var imported = NodeIdentity.FromSeed(seed);
        using var opening = BackupKeys.Derive(imported);
        var plaintext = RandomNumberGenerator.GetBytes(5000);
        var blob = BackupCipher.Seal(sealing, BlobKind.Chunk, plaintext);
        Assert.Equal(plaintext, BackupCipher.Open(opening, BlobKind.Chunk, blob));
    }

    [Fact]
    public void A_wrong_key_does_not_open_a_blob()
    {
        using var owner = BackupKeys.FromSeed(Seed(1));
        using var other = BackupKeys.FromSeed(Seed(2));
        var blob = ChunkPadding.SealChunk(owner, "hello"u8);
        var output = new byte[5];
        Assert.False(ChunkPadding.TryOpenChunk(other, blob, 5, output));
        Assert.True(output.All(b => b == 0));
        var e = Assert.Throws<SecureMeshException>(() => BackupCatalog.Open(other, new BackupCatalog().Seal(owner)));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.True(ChunkPadding.TryOpenChunk(owner, blob, 5, output));
        Assert.Equal("hello"u8.ToArray(), output);
    }

    [Fact]
    public void A_blob_of_one_kind_does_not_open_as_another()
    {
        using var keys = BackupKeys.FromSeed(Seed(3));
        var catalog = new BackupCatalog { Sequence = 7 }.Seal(keys);
        Assert.Throws<SecureMeshException>(() => TrustExport.Open(keys, catalog));
        Assert.Throws<SecureMeshException>(() => BackupCipher.Open(keys, BlobKind.Chunk, catalog));
        Assert.Equal(7, BackupCatalog.Open(keys, catalog).Sequence);
    }

    [Fact]
    public void Every_tampered_byte_and_every_truncation_is_refused()
    {
        using var keys = BackupKeys.FromSeed(Seed(4));
        var plaintext = RandomNumberGenerator.GetBytes(300);
        var blob = BackupCipher.Seal(keys, BlobKind.Trust, plaintext);
        var output = new byte[plaintext.Length];
        for (var i = 0; i < blob.Length; i++)
        {
            var tampered = (byte[])blob.Clone();
            tampered[i] ^= 0x01;
            Assert.False(BackupCipher.TryOpen(keys, BlobKind.Trust, tampered, output), $"byte {i} flipped still opened");
        }
        for (var cut = 0; cut < blob.Length; cut += 7)
        {
            Assert.False(BackupCipher.TryOpen(keys, BlobKind.Trust, blob.AsSpan(0, cut), new byte[Math.Max(0, cut - BackupCipher.Overhead)]));
        }
        Assert.True(BackupCipher.TryOpen(keys, BlobKind.Trust, blob, output));
        Assert.Equal(plaintext, output);
    }

    [Fact]
    public void Nonces_never_repeat_and_equal_plaintexts_seal_differently()
    {
        using var keys = BackupKeys.FromSeed(Seed(5));
        var nonces = new HashSet<string>(StringComparer.Ordinal);
        var blobs = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 20_000; i++)
        {
            var blob = BackupCipher.Seal(keys, BlobKind.Chunk, "same"u8);
            Assert.True(nonces.Add(Convert.ToHexString(blob.AsSpan(1, 24))), "a nonce repeated");
            Assert.True(blobs.Add(BlobId.Of(blob).ToString()), "a blob ID repeated");
        }
    }

    [Fact]
    public void Names_contents_and_exact_sizes_are_not_visible_in_what_a_holder_stores()
    {
        using var keys = BackupKeys.FromSeed(Seed(6));
        const string marker = "MARKER-plaintext-7f3c";
        var catalog = new BackupCatalog
        {
            Sets = [new CatalogSet { Path = "/home/alice/secret-folder-name" }],
            Files = [new CatalogFile { Set = "/home/alice/secret-folder-name", Path = "tax/secret-file-name.txt", Versions = [new CatalogVersion { Size = 5000, ContentId = "b3:x" }] }],
        };
        var sealedCatalog = catalog.Seal(keys);
        var trust = new TrustExport { Peers = [new TrustExportPeer { PeerId = "12D3KooWfriend", Name = "secret-friend-name" }] }.Seal(keys);
        var chunk = ChunkPadding.SealChunk(keys, Encoding.UTF8.GetBytes(marker + new string('a', 4990)));
        foreach (var blob in new[] { sealedCatalog, trust, chunk })
        {
            var text = Encoding.Latin1.GetString(blob);
            foreach (var secret in new[] { "secret-folder-name", "secret-file-name", "secret-friend-name", "MARKER", "aaaaaaaa", "5000" })
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            }
        }
        // Sizes: 4,097 and 8,192 bytes of plaintext seal to the same length; so do 1 and 4,096.
        Assert.Equal(ChunkPadding.SealChunk(keys, new byte[4097]).Length, ChunkPadding.SealChunk(keys, new byte[8192]).Length);
        Assert.Equal(ChunkPadding.SealChunk(keys, new byte[1]).Length, ChunkPadding.SealChunk(keys, new byte[4096]).Length);
        Assert.Equal(ChunkPadding.ChunkSize + BackupCipher.Overhead, ChunkPadding.SealChunk(keys, new byte[600_000]).Length);
    }

    [Theory]
    [InlineData(0, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 8192)]
    [InlineData(65536, 65536)]
    [InlineData(65537, 131072)]
    [InlineData(1 << 20, 1 << 20)]
    public void Chunks_pad_to_power_of_two_buckets(int length, int bucket) => Assert.Equal(bucket, ChunkPadding.BucketFor(length));

    [Fact]
    public void A_chunk_opened_with_the_wrong_expected_length_is_refused()
    {
        using var keys = BackupKeys.FromSeed(Seed(7));
        var blob = ChunkPadding.SealChunk(keys, new byte[5000]);
        Assert.False(ChunkPadding.TryOpenChunk(keys, blob, 100, new byte[100]));
        Assert.True(ChunkPadding.TryOpenChunk(keys, blob, 5000, new byte[5000]));
    }

    [Fact]
    public void A_proof_answer_matches_only_the_bytes_that_were_challenged()
    {
        using var keys = BackupKeys.FromSeed(Seed(8));
        var blob = ChunkPadding.SealChunk(keys, RandomNumberGenerator.GetBytes(200_000));
        var challenge = ProofChallenge.Create(blob);
        var answer = new byte[32];
        ProofChallenge.Answer(challenge.Nonce, challenge.Offset, blob.AsSpan(challenge.Offset, challenge.Length), answer);
        Assert.True(challenge.Check(answer));
        var damaged = (byte[])blob.Clone();
        damaged[challenge.Offset + (challenge.Length / 2)] ^= 0x80;
        ProofChallenge.Answer(challenge.Nonce, challenge.Offset, damaged.AsSpan(challenge.Offset, challenge.Length), answer);
        Assert.False(challenge.Check(answer));
        // A stale answer (another nonce) does not pass either.
        var other = ProofChallenge.Create(blob);
        ProofChallenge.Answer(other.Nonce, challenge.Offset, blob.AsSpan(challenge.Offset, challenge.Length), answer);
        Assert.False(challenge.Check(answer));
        var packed = ProofChallenge.Pack([challenge, other]);
        var unpacked = ProofChallenge.Unpack(packed);
        Assert.Equal(2, unpacked.Count);
        Assert.Equal(challenge.Expected, unpacked[0].Expected);
        Assert.Equal(other.Offset, unpacked[1].Offset);
    }

    [Fact]
    public void Malformed_requests_are_refused_without_throwing()
    {
        var random = new Random(19);
        for (var i = 0; i < 20_000; i++)
        {
            var message = new byte[random.Next(0, 120)];
            random.NextBytes(message);
            _ = BackupWire.TryParseRequest(message, out _, out _);
        }
        Assert.False(BackupWire.TryParseRequest(Array.Empty<byte>(), out _, out _));
        Assert.False(BackupWire.TryParseRequest(new byte[] { 99 }, out _, out var unknown));
        Assert.Contains("unknown", unknown, StringComparison.Ordinal);
        Assert.False(BackupWire.TryParseRequest(new byte[1 + 32 + BackupWire.MaxBlob + 1].With(0, (byte)BackupOp.Put), out _, out _));
        Assert.False(BackupWire.TryParseRequest(new byte[1 + 31].With(0, (byte)BackupOp.Get), out _, out _));
        var prove = BackupWire.ProveRequest(BlobId.Of("x"u8), new ProofChallenge(new byte[32], 0, ProofChallenge.MaxRange + 1, new byte[32]));
        Assert.False(BackupWire.TryParseRequest(prove, out _, out _));
        Assert.Throws<SecureMeshException>(() => BackupWire.ParseList(new byte[] { 0, 1, 2 }));
        Assert.Throws<SecureMeshException>(() => BackupWire.Payload(Array.Empty<byte>()));
        var quota = Assert.Throws<SecureMeshException>(() => BackupWire.Payload(BackupWire.Error(BackupStatus.QuotaExceeded, "full\u001b[2J")));
        Assert.Equal(SecureMeshErrorKind.Conflict, quota.Kind);
        Assert.DoesNotContain('\u001b', quota.Message);
    }
}

internal static class ByteArrayExtensions
{
    public static byte[] With(this byte[] bytes, int index, byte value)
    {
        bytes[index] = value;
        return bytes;
    }
}
