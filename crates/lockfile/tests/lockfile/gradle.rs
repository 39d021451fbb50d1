//! gradle.lockfile and the per-configuration locks.

use crate::support::{fixture, flags, package};

#[test]
fn configurations_are_groups_and_test_only_is_dev() {
    let lock = fixture("gradle-lockfile/handwritten/gradle.lockfile");
    assert_eq!(lock.packages.len(), 5);
    let guava = package(&lock, "com.google.guava:guava", "32.1.2-jre");
    assert_eq!(flags(guava), (Some(5), None, Some(false), None));
    assert_eq!(guava.groups, vec!["compileClasspath", "runtimeClasspath"]);
    assert_eq!(package(&lock, "junit:junit", "4.13.2").dev, Some(true));
    assert_eq!(
        package(&lock, "com.fasterxml.jackson.core:jackson-core", "2.15.2").dev,
        Some(false)
    );
    let log4j = package(&lock, "org.apache.logging.log4j:log4j-core", "2.14.1");
    assert_eq!(log4j.line, Some(7));
}

#[test]
fn buildscript_and_legacy_locks() {
    let lock = fixture("gradle-lockfile/handwritten/buildscript-gradle.lockfile");
    assert_eq!(lock.packages.len(), 1);
    assert_eq!(lock.packages[0].groups, vec!["classpath"]);
    let legacy =
        fixture("gradle-lockfile/handwritten/gradle/dependency-locks/compileClasspath.lockfile");
    let core = package(&legacy, "org.springframework:spring-core", "5.3.20");
    assert_eq!((core.line, core.dev), (Some(4), Some(false)));
    assert_eq!(core.groups, vec!["compileClasspath"]);
    assert_eq!(legacy.packages.len(), 2);
}
