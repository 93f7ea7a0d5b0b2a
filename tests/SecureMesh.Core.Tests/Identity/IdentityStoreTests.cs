using System.Diagnostics;
using System.Text;
using SecureMesh.Core.Identity;
using Xunit.Abstractions;

namespace SecureMesh.Core.Tests.Identity;

public class IdentityStoreTests(ITestOutputHelper output)
{
    // Cheap Argon2id cost so the suite stays fast; one test below uses the real default.
    private static readonly KdfParameters Fast = new(KdfParameters.MinMemoryKiB, 1, 1);
    private const string Passphrase = "correct horse battery staple";

    private static void SaveFast(string home, NodeIdentity identity, string? passphrase, bool force = false) =>
        IdentityStore.Save(home, identity, passphrase, force, Fast, beforeCommit: null);

    private static Func<string?> Never => () => throw new InvalidOperationException("passphrase must not be asked for");

    private static (byte[] Key, byte[] Pub) Snapshot(string home) =>
        (File.ReadAllBytes(IdentityStore.KeyPath(home)), File.ReadAllBytes(IdentityStore.PubPath(home)));

    [Fact]
    public void Unencrypted_round_trip_never_asks_for_a_passphrase()
    {
        using var dir = new TempDir();
        var home = dir.Combine("home");
        using var identity = NodeIdentity.Generate();

        Assert.False(IdentityStore.Exists(home));
        IdentityStore.Save(home, identity, passphrase: null, force: false);

        Assert.True(IdentityStore.Exists(home));
        Assert.False(IdentityStore.IsEncrypted(home));
        Assert.Equal(identity.PeerId, IdentityStore.LoadPeerId(home));
        using var loaded = IdentityStore.Load(home, Never);
        Assert.Equal(identity.PeerId, loaded.PeerId);
        Assert.True(NodeIdentity.Verify(identity.PublicKey, "x"u8, loaded.Sign("x"u8)));
    }

    [Fact]
    public void Encrypted_round_trip_with_the_default_cost_asks_for_the_passphrase_once_and_unlocks()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        IdentityStore.Save(dir.Path, identity, Passphrase, force: false);

        Assert.True(IdentityStore.IsEncrypted(dir.Path));
        Assert.Equal(identity.PeerId, IdentityStore.LoadPeerId(dir.Path));
        var text = File.ReadAllText(IdentityStore.KeyPath(dir.Path));
        Assert.Contains("\"argon2id\"", text, StringComparison.Ordinal);
        Assert.Contains($"\"memoryKiB\": {KdfParameters.Default.MemoryKiB}", text, StringComparison.Ordinal);

        var calls = 0;
        var watch = Stopwatch.StartNew();
        using var loaded = IdentityStore.Load(dir.Path, () => { calls++; return Passphrase; });
        watch.Stop();
        output.WriteLine($"Argon2id {KdfParameters.Default} unlock: {watch.ElapsedMilliseconds} ms");
        Assert.Equal(1, calls);
        Assert.Equal(identity.PeerId, loaded.PeerId);
        // The time is printed, not asserted: speed is measured in benchmarks, never in timed unit tests.
    }

    [Fact]
    public void Seed_and_passphrase_never_appear_in_the_files()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        Span<byte> seed = stackalloc byte[32];
        identity.ExportSeed(seed);
        var seedB64 = Convert.ToBase64String(seed);
        var seedHex = Convert.ToHexStringLower(seed);
        SaveFast(dir.Path, identity, Passphrase);

        foreach (var file in Directory.GetFiles(dir.Path))
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotContain(seedB64[..20], text, StringComparison.Ordinal);
            Assert.DoesNotContain(seedHex[..20], text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Passphrase, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void No_error_or_string_form_carries_the_seed_or_a_passphrase()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        Span<byte> seed = stackalloc byte[NodeIdentity.SeedLength];
        identity.ExportSeed(seed);
        var secrets = new[]
        {
            Convert.ToHexStringLower(seed)[..16], Convert.ToHexString(seed)[..16], Convert.ToBase64String(seed)[..16],
            Passphrase, "Tr0ub4dor&3 is wrong",
        };
        SaveFast(dir.Path, identity, Passphrase);
        var keyPath = IdentityStore.KeyPath(dir.Path);
        var good = File.ReadAllBytes(keyPath);

        var texts = new List<string> { identity.ToString(), identity.PeerId.ToString() };
        void Collect(Action action)
        {
            var e = Assert.ThrowsAny<Exception>(action);
            texts.Add(e.ToString()); // message, inner exceptions and stack: what --verbose prints
        }
        Collect(() => IdentityStore.Load(dir.Path, () => "Tr0ub4dor&3 is wrong").Dispose());
        Collect(() => SaveFast(dir.Path, identity, Passphrase));
        var flipped = (byte[])good.Clone();
        flipped[^5] ^= 0x10;
        File.WriteAllBytes(keyPath, flipped);
        Collect(() => IdentityStore.Load(dir.Path, () => Passphrase).Dispose());
        File.WriteAllBytes(keyPath, good[..^7]);
        Collect(() => IdentityStore.Load(dir.Path, () => Passphrase).Dispose());
        File.WriteAllBytes(keyPath, good);
        Collect(() => KeyFormats.Import(System.Text.Encoding.ASCII.GetBytes(KeyFormats.ExportOpenSsh(identity)[..200])).Dispose());
        Collect(() => KeyFormats.Import(System.Text.Encoding.ASCII.GetBytes(KeyFormats.ExportPkcs8Pem(identity).Replace("A", "*", StringComparison.Ordinal))).Dispose());

        Assert.Equal(8, texts.Count);
        foreach (var text in texts)
        {
            foreach (var secret in secrets)
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            }
        }
        // The test can see the secrets when they are there: the unlocked identity still exports the same seed.
        using var loaded = IdentityStore.Load(dir.Path, () => Passphrase);
        Span<byte> again = stackalloc byte[NodeIdentity.SeedLength];
        loaded.ExportSeed(again);
        Assert.StartsWith(secrets[0], Convert.ToHexStringLower(again), StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_passphrase_is_a_clear_error_and_changes_nothing()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, Passphrase);
        var before = Snapshot(dir.Path);

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, () => "wrong"));
        Assert.Equal(SecureMeshErrorKind.WrongPassphrase, e.Kind);
        Assert.Equal($"wrong passphrase for {IdentityStore.KeyPath(dir.Path)}", e.Message);

        var empty = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, () => null));
        Assert.Equal(SecureMeshErrorKind.WrongPassphrase, empty.Kind);

        var after = Snapshot(dir.Path);
        Assert.Equal(before.Key, after.Key);
        Assert.Equal(before.Pub, after.Pub);
        using var loaded = IdentityStore.Load(dir.Path, () => Passphrase);
        Assert.Equal(identity.PeerId, loaded.PeerId);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_single_bit_flip_in_the_key_file_is_an_identity_error(bool encrypted)
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, encrypted ? Passphrase : null);
        var keyPath = IdentityStore.KeyPath(dir.Path);
        var good = File.ReadAllBytes(keyPath);

        for (var i = 0; i < good.Length; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i] ^= 0x01;
            File.WriteAllBytes(keyPath, bad);
            var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, () => Passphrase));
            Assert.True(e.Kind == SecureMeshErrorKind.Identity, $"byte {i}: {e.Kind}: {e.Message}");
            AssertOneLineNaming(e, keyPath);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_bit_of_every_byte_is_covered_by_the_decoder(bool encrypted)
    {
        // In memory, so every bit can be tried; several keys, because whether a flip lands in base64 padding bits depends on the key.
        for (var round = 0; round < 3; round++)
        {
            using var identity = NodeIdentity.Generate();
            var good = IdentityKeyFile.EncodePrivate(identity, encrypted ? Passphrase : null, Fast);
            using (var ok = IdentityKeyFile.DecodePrivate(good, "identity.key", () => Passphrase))
            {
                Assert.Equal(identity.PeerId, ok.PeerId);
            }
            for (var i = 0; i < good.Length * 8; i++)
            {
                var bad = (byte[])good.Clone();
                bad[i / 8] ^= (byte)(1 << (i % 8));
                var e = Assert.Throws<SecureMeshException>(() => IdentityKeyFile.DecodePrivate(bad, "identity.key", () => Passphrase));
                Assert.True(e.Kind == SecureMeshErrorKind.Identity, $"bit {i}: {e.Kind}: {e.Message}");
                Assert.DoesNotContain('\n', e.Message);
            }
        }
    }

    [Fact]
    public void Every_single_bit_flip_in_the_public_file_is_an_identity_error()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, null);
        var pubPath = IdentityStore.PubPath(dir.Path);
        var good = File.ReadAllBytes(pubPath);

        for (var i = 0; i < good.Length * 8; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i / 8] ^= (byte)(1 << (i % 8));
            var e = Assert.Throws<SecureMeshException>(() => IdentityKeyFile.DecodePublic(bad, pubPath));
            Assert.True(e.Kind == SecureMeshErrorKind.Identity, $"bit {i}: {e.Kind}: {e.Message}");
            AssertOneLineNaming(e, pubPath);
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void Truncated_or_garbage_files_are_identity_errors(bool encrypted, bool keyFile)
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, encrypted ? Passphrase : null);
        var path = keyFile ? IdentityStore.KeyPath(dir.Path) : IdentityStore.PubPath(dir.Path);
        var good = File.ReadAllBytes(path);

        byte[][] variants =
        [
            [],
            good[..(good.Length / 2)],
            good[..^3],
            "garbage\n"u8.ToArray(),
            "{}"u8.ToArray(),
            "[1,2,3]"u8.ToArray(),
            [0xff, 0xfe, 0x00, 0x01],
            new byte[IdentityStore_MaxFileLength + 1],
        ];
        foreach (var variant in variants)
        {
            File.WriteAllBytes(path, variant);
            var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, () => Passphrase));
            Assert.Equal(SecureMeshErrorKind.Identity, e.Kind);
            AssertOneLineNaming(e, path);
        }
    }

    private const int IdentityStore_MaxFileLength = 16 * 1024;

    [Fact]
    public void A_key_that_does_not_match_the_public_file_is_refused()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var one = NodeIdentity.Generate();
        using var two = NodeIdentity.Generate();
        SaveFast(a.Path, one, null);
        SaveFast(b.Path, two, null);
        File.Copy(IdentityStore.PubPath(b.Path), IdentityStore.PubPath(a.Path), overwrite: true);

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(a.Path, Never));
        Assert.Equal(SecureMeshErrorKind.Identity, e.Kind);
        Assert.Contains("does not match", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_swapped_public_key_is_caught_by_the_checksum()
    {
        using var dir = new TempDir();
        using var one = NodeIdentity.Generate();
        using var two = NodeIdentity.Generate();
        SaveFast(dir.Path, one, Passphrase);
        var keyPath = IdentityStore.KeyPath(dir.Path);
        File.WriteAllText(keyPath, File.ReadAllText(keyPath)
            .Replace(Convert.ToBase64String(one.PublicKey), Convert.ToBase64String(two.PublicKey), StringComparison.Ordinal));

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, () => Passphrase));
        Assert.Equal(SecureMeshErrorKind.Identity, e.Kind);
    }

    [Fact]
    public void The_header_is_bound_to_the_ciphertext_as_associated_data()
    {
        // Even with a valid checksum, an edited header makes the AEAD fail before the public-key check could run.
        using var one = NodeIdentity.Generate();
        using var two = NodeIdentity.Generate();
        var file = Encoding.UTF8.GetString(IdentityKeyFile.EncodePrivate(one, Passphrase, Fast))
            .Replace(Convert.ToBase64String(one.PublicKey), Convert.ToBase64String(two.PublicKey), StringComparison.Ordinal);
        var tampered = IdentityKeyFile.WithRecomputedChecksum(Encoding.UTF8.GetBytes(file));

        var e = Assert.Throws<SecureMeshException>(() => IdentityKeyFile.DecodePrivate(tampered, "identity.key", () => Passphrase));
        Assert.Equal(SecureMeshErrorKind.WrongPassphrase, e.Kind);
    }

    [Fact]
    public void Save_refuses_to_overwrite_without_force_and_replaces_with_force()
    {
        using var dir = new TempDir();
        using var first = NodeIdentity.Generate();
        using var second = NodeIdentity.Generate();
        SaveFast(dir.Path, first, null);
        var before = Snapshot(dir.Path);

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Save(dir.Path, second, null, force: false));
        Assert.Equal(SecureMeshErrorKind.Conflict, e.Kind);
        Assert.Equal($"an identity already exists in {dir.Path}; use --force to replace it", e.Message);
        var after = Snapshot(dir.Path);
        Assert.Equal(before.Key, after.Key);
        Assert.Equal(before.Pub, after.Pub);

        SaveFast(dir.Path, second, Passphrase, force: true);
        Assert.Equal(second.PeerId, IdentityStore.LoadPeerId(dir.Path));
        using var loaded = IdentityStore.Load(dir.Path, () => Passphrase);
        Assert.Equal(second.PeerId, loaded.PeerId);
        Assert.Equal([IdentityStore.PublicKeyFileName, IdentityStore.PrivateKeyFileName],
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).Reverse());
    }

    [Fact]
    public void Save_refuses_when_only_the_public_file_exists()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, IdentityStore.PublicKeyFileName), "x");
        using var identity = NodeIdentity.Generate();
        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Save(dir.Path, identity, null, force: false));
        Assert.Equal(SecureMeshErrorKind.Conflict, e.Kind);
    }

    [Fact]
    public void A_failed_write_leaves_the_old_identity_and_no_temporary_files()
    {
        using var dir = new TempDir();
        using var first = NodeIdentity.Generate();
        using var second = NodeIdentity.Generate();
        SaveFast(dir.Path, first, null);
        var before = Snapshot(dir.Path);

        var e = Assert.Throws<SecureMeshException>(() =>
            IdentityStore.Save(dir.Path, second, null, force: true, Fast, () => throw new IOException("No space left on device")));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        Assert.Contains("No space left on device", e.Message, StringComparison.Ordinal);

        var after = Snapshot(dir.Path);
        Assert.Equal(before.Key, after.Key);
        Assert.Equal(before.Pub, after.Pub);
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length);
        using var loaded = IdentityStore.Load(dir.Path, Never);
        Assert.Equal(first.PeerId, loaded.PeerId);
    }

    [Fact]
    public void Temporary_leftovers_from_a_crash_are_ignored()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, null);
        File.WriteAllText(IdentityStore.KeyPath(dir.Path) + ".tmp-0123456789ab", "{\"half\":");
        File.WriteAllText(IdentityStore.PubPath(dir.Path) + ".tmp-0123456789ab", "");

        using var loaded = IdentityStore.Load(dir.Path, Never);
        Assert.Equal(identity.PeerId, loaded.PeerId);
        SaveFast(dir.Path, identity, null, force: true);
        Assert.Equal(identity.PeerId, IdentityStore.LoadPeerId(dir.Path));
    }

    [Fact]
    public void Modes_are_0700_for_the_directory_and_0600_for_the_key()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        using var dir = new TempDir();
        var home = dir.Combine("a", "b", "home");
        using var identity = NodeIdentity.Generate();
        SaveFast(home, identity, null);

        const UnixFileMode rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(rwx, File.GetUnixFileMode(home));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(IdentityStore.KeyPath(home)));
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(IdentityStore.PubPath(home)) & (UnixFileMode.OtherWrite | UnixFileMode.GroupWrite));
    }

    [Fact]
    public void An_existing_directory_of_ours_is_tightened_to_0700()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        using var dir = new TempDir();
        var home = dir.Combine("home");
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, (UnixFileMode)0b111_101_101);

        IdentityStore.EnsureDataDirectory(home);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(home));
    }

    [Fact]
    public void A_directory_that_cannot_be_created_is_a_storage_error()
    {
        using var dir = new TempDir();
        var file = dir.Combine("not-a-directory");
        File.WriteAllText(file, "x");
        var home = Path.Combine(file, "home");

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.EnsureDataDirectory(home));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        Assert.StartsWith($"cannot create data directory '{home}': ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void An_impossible_path_is_a_storage_error()
    {
        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.EnsureDataDirectory("bad\0path"));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
    }

    [Fact]
    public void Missing_identity_is_not_found()
    {
        using var dir = new TempDir();
        Assert.False(IdentityStore.Exists(dir.Path));
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => IdentityStore.LoadPeerId(dir.Path)).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, Never)).Kind);
    }

    [Fact]
    public void A_missing_public_file_beside_a_key_is_an_identity_error()
    {
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        SaveFast(dir.Path, identity, null);
        File.Delete(IdentityStore.PubPath(dir.Path));

        var e = Assert.Throws<SecureMeshException>(() => IdentityStore.Load(dir.Path, Never));
        Assert.Equal(SecureMeshErrorKind.Identity, e.Kind);
        AssertOneLineNaming(e, IdentityStore.PubPath(dir.Path));
    }

    [Fact]
    public void A_symlinked_home_is_followed_for_the_ownership_check()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        using var dir = new TempDir();
        var target = dir.Combine("target");
        Directory.CreateDirectory(target);
        File.SetUnixFileMode(target, (UnixFileMode)0b111_101_101);
        var link = dir.Combine("link");
        Directory.CreateSymbolicLink(link, target);

        Assert.True(UnixFileSystem.IsOwnedByCurrentUser(link));
        IdentityStore.EnsureDataDirectory(link);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(target));
    }

    [Fact]
    public void A_directory_owned_by_someone_else_is_not_claimed()
    {
        Assert.True(OperatingSystem.IsLinux(), "the ownership check is Linux-only; this suite runs on Linux");
        var dir = Directory.CreateTempSubdirectory("securemesh-owner-").FullName;
        try
        {
            Assert.True(UnixFileSystem.IsOwnedByCurrentUser(dir));
            if (Environment.UserName == "root")
            {
                // As root, hand the directory to 'nobody' so it is someone else's.
                using var chown = System.Diagnostics.Process.Start("chown", ["65534", dir])!;
                chown.WaitForExit();
                Assert.Equal(0, chown.ExitCode);
                Assert.False(UnixFileSystem.IsOwnedByCurrentUser(dir));
            }
            else
            {
                Assert.False(UnixFileSystem.IsOwnedByCurrentUser("/"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void AssertOneLineNaming(SecureMeshException e, string path)
    {
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }
}
